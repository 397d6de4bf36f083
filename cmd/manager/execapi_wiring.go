package main

import (
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/execapi"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// execOptions configure the exec API: the aggregated bottles/exec,
// bottles/attach and bottles/log subresources, and the endpoint other nodes' gateways reach
// this agent on.
type execOptions struct {
	bindAddress string
	certDir     string
	keepAlive   time.Duration
	agentPort   int
	agents      nodeAddresses

	idleTimeout        time.Duration
	maxConnections     int
	maxSessions        int
	maxSessionsPerUser int
	gatewayNames       string
}

func (e *execOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.bindAddress, "exec-bind-address", execapi.DefaultBindAddress, "Address of the exec API (aggregated bottles/exec, bottles/attach and bottles/log, and the agent endpoint); 0 disables it.")
	fs.StringVar(&e.certDir, "exec-cert-dir", "/etc/bottle-exec/certs", "Directory with serving.crt/.key, exec-ca.crt and agent-client.crt/.key (see docs/exec.md); re-read when they change.")
	fs.DurationVar(&e.keepAlive, "exec-keepalive", execapi.DefaultKeepAlive, "WebSocket ping period of exec and attach sessions.")
	fs.IntVar(&e.agentPort, "exec-agent-port", 0, "Port of other nodes' agents; 0 means this agent's own exec port.")
	e.agents = nodeAddresses{}
	fs.Var(e.agents, "exec-agent-address", "NODE=HOST:PORT: where that node's agent listens, overriding its InternalIP (repeatable).")
	fs.DurationVar(&e.idleTimeout, "exec-idle-timeout", execapi.DefaultIdleTimeout, "Close exec API connections idle this long between requests.")
	fs.IntVar(&e.maxConnections, "exec-max-connections", execapi.DefaultMaxConnections, "Open connections the exec listener serves at once (sessions included); more wait to be accepted.")
	fs.IntVar(&e.maxSessions, "exec-max-sessions", execapi.DefaultMaxSessions, "Exec/attach sessions this agent serves or proxies at once; more are refused with 429.")
	fs.IntVar(&e.maxSessionsPerUser, "exec-max-sessions-per-user", execapi.DefaultMaxSessionsPerUser, "Exec/attach sessions one user may hold open through this agent at once; more are refused with 429.")
	fs.StringVar(&e.gatewayNames, "exec-gateway-client-names", certs.DefaultAgentClientCN, "Comma-separated common names of the gateway client certificates the agent endpoint accepts (any other exec-CA certificate is refused).")
}

func (e *execOptions) validate() error {
	switch {
	case e.bindAddress == "0":
		return nil
	case e.keepAlive < 100*time.Millisecond:
		return fmt.Errorf("--exec-keepalive must be at least 100ms, not %s", e.keepAlive)
	case e.agentPort < 0 || e.agentPort > 65535:
		return fmt.Errorf("--exec-agent-port must be a port number, not %d", e.agentPort)
	case e.certDir == "":
		return errors.New("--exec-cert-dir is required unless --exec-bind-address=0")
	case e.idleTimeout < time.Second:
		return fmt.Errorf("--exec-idle-timeout must be at least 1s, not %s", e.idleTimeout)
	case e.maxConnections < 1 || e.maxSessions < 1 || e.maxSessionsPerUser < 1:
		return errors.New("--exec-max-connections, --exec-max-sessions and --exec-max-sessions-per-user must be at least 1")
	case e.maxSessions >= e.maxConnections:
		return fmt.Errorf("--exec-max-sessions (%d) must be below --exec-max-connections (%d): a session holds a connection", e.maxSessions, e.maxConnections)
	case len(e.gatewayClientNames()) == 0:
		return errors.New("--exec-gateway-client-names must name at least one common name")
	}
	return nil
}

// addExecServer runs the exec API in the manager. It reads Bottles and Nodes
// through the uncached reader: the cache holds only this node's Bottles,
// and a gateway serves Bottles of every node.
func addExecServer(mgr ctrl.Manager, o *options, machines *smolvm.CLI, mode smolvm.ExecMode, logs *steplog.Store, tracker *activity.Tracker) error {
	if o.exec.bindAddress == "0" {
		return nil
	}
	f := certs.FilesIn(o.exec.certDir)
	srv, err := execapi.NewServer(mgr.GetConfig(), mgr.GetAPIReader(), execapi.Options{
		NodeName:            o.nodeName,
		BindAddress:         o.exec.bindAddress,
		ServingCertFile:     f.Serving,
		ServingKeyFile:      f.ServingKey,
		AgentCAFile:         f.ExecCA,
		AgentClientCertFile: f.AgentClient,
		AgentClientKeyFile:  f.AgentClientKey,
		AgentPort:           o.exec.agentPort,
		AgentAddresses:      o.exec.agents,
		KeepAlive:           o.exec.keepAlive,
		IdleTimeout:         o.exec.idleTimeout,
		MaxConnections:      o.exec.maxConnections,
		MaxSessions:         o.exec.maxSessions,
		MaxSessionsPerUser:  o.exec.maxSessionsPerUser,
		GatewayClientNames:  o.exec.gatewayClientNames(),
		Machines:            machines,
		ExecMode:            mode,
		StepLogs:            logs,
		Activity:            tracker,
		Logger:              ctrl.Log.WithName("exec-api"),
	})
	if err != nil {
		return fmt.Errorf("setting up the exec API: %w", err)
	}
	return mgr.Add(srv)
}

func (e *execOptions) gatewayClientNames() []string {
	var names []string
	for _, n := range strings.Split(e.gatewayNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// nodeAddresses is a repeatable NODE=HOST:PORT flag.
type nodeAddresses map[string]string

func (n nodeAddresses) String() string {
	var parts []string
	for k, v := range n {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (n nodeAddresses) Set(v string) error {
	node, addr, ok := strings.Cut(v, "=")
	if !ok || node == "" || addr == "" {
		return fmt.Errorf("want NODE=HOST:PORT, got %q", v)
	}
	n[node] = addr
	return nil
}
