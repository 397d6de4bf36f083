package execapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// Defaults for Options.
const (
	DefaultBindAddress = ":9443"
	DefaultKeepAlive   = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle between
	// requests (sessions are hijacked and keep their own keepalive).
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxConnections bounds the listener's open connections,
	// sessions included.
	DefaultMaxConnections = 512
	// DefaultMaxSessions bounds the sessions one server handles at once,
	// and DefaultMaxSessionsPerUser those of one user (as the gateway
	// authenticated them).
	DefaultMaxSessions        = 128
	DefaultMaxSessionsPerUser = 16
	// DefaultAgentServerName is the name gateways expect in an agent's
	// serving certificate.
	DefaultAgentServerName = certs.AgentServerName
)

// Machines runs interactive commands in smolvm machines (*smolvm.CLI).
type Machines interface {
	ExecInteractive(ctx context.Context, req smolvm.ExecRequest, s smolvm.Streams) (exitCode int, err error)
}

// Options configure a Server. Certificate files are re-read when they
// change, so rotating a mounted Secret needs no restart.
type Options struct {
	// NodeName is this process's node: Bottles whose spec.nodeName is
	// this node run here, others are proxied to their node's agent.
	NodeName string
	// BindAddress is where the TLS listener binds (DefaultBindAddress).
	BindAddress string
	// Listener, when set, is used instead of BindAddress (tests).
	Listener net.Listener

	// ServingCertFile and ServingKeyFile: the certificate presented to the
	// kube-apiserver (signed by the APIService caBundle) and to other
	// gateways (must carry AgentServerName).
	ServingCertFile, ServingKeyFile string
	// AgentCAFile verifies gateway client certificates on the agent
	// endpoint and agent serving certificates when proxying.
	AgentCAFile string
	// AgentClientCertFile and AgentClientKeyFile: this gateway's client
	// certificate towards other agents.
	AgentClientCertFile, AgentClientKeyFile string
	// AgentServerName is verified in agents' serving certificates
	// (DefaultAgentServerName).
	AgentServerName string
	// GatewayClientNames are the common names the agent endpoint accepts
	// in exec-CA client certificates (default: certs.DefaultAgentClientCN).
	// Any other leaf of the exec CA -- a serving certificate, or one issued
	// for something else -- is refused.
	GatewayClientNames []string
	// AgentPort is the port of other nodes' agents; 0 means this server's
	// own port.
	AgentPort int
	// AgentAddresses maps a node name to the host:port of its agent,
	// overriding the Node's InternalIP (dev setups and tests).
	AgentAddresses map[string]string

	// KeepAlive is the WebSocket ping period (DefaultKeepAlive). A peer
	// that answers nothing for three periods is disconnected.
	KeepAlive time.Duration

	// IdleTimeout closes connections idle between requests
	// (DefaultIdleTimeout). MaxConnections bounds the listener's open
	// connections (DefaultMaxConnections); further ones wait to be
	// accepted.
	IdleTimeout    time.Duration
	MaxConnections int
	// MaxSessions and MaxSessionsPerUser cap the sessions this server
	// serves or proxies at once; a session over a cap is refused with 429
	// Too Many Requests (DefaultMaxSessions, DefaultMaxSessionsPerUser).
	MaxSessions, MaxSessionsPerUser int

	// Machines runs the sessions; ExecMode is how they switch user.
	Machines Machines
	ExecMode smolvm.ExecMode

	// StepLogs serves bottles/log, bottleruns/log and bottletemplates/log;
	// nil answers 503.
	StepLogs *steplog.Store

	// Activity records each session as use of its Bottle (for
	// spec.lifecycle.stopAfterIdle) and wakes an idle-stopped Bottle; it
	// is the agent's Bottle reconciler's. Nil: sessions on an idle-stopped
	// Bottle are refused like those on a stopped one.
	Activity *activity.Tracker
	// WakeTimeout bounds how long a session waits for an idle-stopped
	// Bottle to be Ready again; 0 means DefaultWakeTimeout.
	WakeTimeout time.Duration

	// Logger; the zero value discards.
	Logger logr.Logger
}

func (o Options) withDefaults() Options {
	if o.BindAddress == "" {
		o.BindAddress = DefaultBindAddress
	}
	if o.AgentServerName == "" {
		o.AgentServerName = DefaultAgentServerName
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.WakeTimeout <= 0 {
		o.WakeTimeout = DefaultWakeTimeout
	}
	if len(o.GatewayClientNames) == 0 {
		o.GatewayClientNames = []string{certs.DefaultAgentClientCN}
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.MaxSessionsPerUser <= 0 {
		o.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	if o.ServingCertFile == "" || o.ServingKeyFile == "" {
		errs = append(errs, errors.New("ServingCertFile and ServingKeyFile are required"))
	}
	if o.AgentCAFile == "" {
		errs = append(errs, errors.New("AgentCAFile is required: the agent endpoint is never open"))
	}
	if o.AgentClientCertFile == "" || o.AgentClientKeyFile == "" {
		errs = append(errs, errors.New("AgentClientCertFile and AgentClientKeyFile are required"))
	}
	if o.Machines == nil {
		errs = append(errs, errors.New("Machines is required"))
	}
	if o.AgentPort < 0 || o.AgentPort > 65535 {
		errs = append(errs, fmt.Errorf("AgentPort %d out of range", o.AgentPort))
	}
	if o.Listener == nil {
		if _, port, err := net.SplitHostPort(o.BindAddress); err != nil {
			errs = append(errs, fmt.Errorf("BindAddress %q: %w", o.BindAddress, err))
		} else if _, err := strconv.Atoi(port); err != nil {
			errs = append(errs, fmt.Errorf("BindAddress %q needs a numeric port", o.BindAddress))
		}
	}
	for node, addr := range o.AgentAddresses {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("AgentAddresses[%s] = %q: %w", node, addr, err))
		}
	}
	return errors.Join(errs...)
}
