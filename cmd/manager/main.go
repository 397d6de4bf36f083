// Command manager is the node-local Bottle agent: one per node (a DaemonSet),
// reconciling the Bottles whose spec.nodeName is its node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/controllers/nodecheck"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/reaper"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/version"
	"github.com/bot-bottle/bottle-controller/internal/vmlauncher"
)

type options struct {
	// mode is agent (one per node, the DaemonSet) or cluster (one per
	// cluster, the placement controller).
	mode                    string
	reservations            bool
	cluster                 clusterOptions
	nodeName                string
	smolvmPath              string
	smolvmDataDir           string
	smolvmRoot              smolvmRootOptions
	execMode                string
	metricsAddr             string
	probeAddr               string
	maxConcurrentReconciles int
	resyncPeriod            time.Duration
	shutdownGrace           time.Duration
	digestKeyFile           string
	smolvmRecheckPeriod     time.Duration
	lease                   leaseOptions
	timeouts                smolvmTimeouts
	vmLauncher              string
	systemBusSocket         string
	exec                    execOptions
	stepLogs                stepLogOptions
	zap                     zap.Options
	// skipNameValidation lets tests run two agents in one process.
	skipNameValidation bool
}

// parseFlags returns a one-line error for bad or missing flags.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, err
	}
	return o.validate(fs)
}

// newFlagSet registers every flag of the manager, both modes, into o. It is
// the one list: -h prints it and docs/agent.md's flag table is generated
// from it (TestFlagReferenceIsCurrent).
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.mode, "mode", "agent", "agent: run the Bottles of one node (the DaemonSet); cluster: place Bottles with reservation Pods and watch the agents' heartbeats (one Deployment, leader-elected).")
	fs.BoolVar(&o.reservations, "reservations", true, "Give every Bottle a reservation Pod so kube-scheduler and the kubelet account for its VM and place Bottles without a nodeName; agents then create a machine only once its reservation is bound to their node. Set the same value in both modes; false: Bottles must name their node.")
	o.cluster.bindFlags(fs)
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "The node whose Bottles this agent runs (default $NODE_NAME).")
	fs.StringVar(&o.smolvmPath, "smolvm-path", "smolvm", "Path of the smolvm binary (or the simulator).")
	fs.StringVar(&o.smolvmDataDir, "smolvm-data-dir", os.Getenv("SMOLVM_DATA_DIR"), "SMOLVM_DATA_DIR for smolvm; empty keeps smolvm's default.")
	o.smolvmRoot.bindFlags(fs)
	fs.StringVar(&o.execMode, "exec-mode", "login", "How steps switch user in the guest: login (runuser -l USER -c) or direct (runuser -u USER --, for guests whose PAM login setup hangs).")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", agent.DefaultMaxConcurrentReconciles,
		"Bottles reconciled (and provisioning steps and smolvm processes run) in parallel; passes mostly wait on their VMs.")
	fs.DurationVar(&o.resyncPeriod, "resync-period", time.Minute, "How often a Ready Bottle's machine is checked for drift.")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 50*time.Second, "When the agent is told to stop, how long a running provisioning step may go on to finish and have its result recorded; a step still running then is cut off, and the next agent runs it again. Keep it below the Pod's terminationGracePeriodSeconds. 0 cuts steps off at once.")
	fs.StringVar(&o.digestKeyFile, "digest-key-file", "/etc/bottle-digest/key", "Key (at least 32 bytes) of the HMACs that status.files records for Secret content, shared by every agent (a mounted Secret); when the file is missing, each agent process uses a random key of its own.")
	fs.DurationVar(&o.smolvmRecheckPeriod, "smolvm-recheck-period", 30*time.Second, "While smolvm is missing or too old, how often to check it again (the agent restarts once it is usable).")
	o.lease.bindFlags(fs)
	o.timeouts.bindFlags(fs)
	fs.StringVar(&o.vmLauncher, "vm-launcher", "direct", "Where `machine start` leaves the VM process: direct (a child of the agent, in its container: an agent restart stops the VMs; for make dev and tests) or systemd (a transient unit bottle-vm-<machine>.service on the host, started over D-Bus, with the VM's CPUs and memory as limits: the VM outlives the agent).")
	fs.StringVar(&o.systemBusSocket, "system-bus-socket", vmlauncher.DefaultSystemBusSocket, "The host's D-Bus system bus socket, for --vm-launcher=systemd.")
	o.exec.bindFlags(fs)
	o.stepLogs.bindFlags(fs)
	o.zap.BindFlags(fs)
	return fs
}

// validate checks the parsed flags of fs for the mode they select.
func (o *options) validate(fs *flag.FlagSet) (*options, error) {
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.mode != "agent" && o.mode != "cluster":
		return nil, fmt.Errorf("--mode must be agent or cluster, not %q", o.mode)
	case o.mode == "cluster":
		if err := o.lease.validate(); err != nil {
			return nil, err
		}
		if err := o.cluster.validate(o.reservations, o.lease.namespace); err != nil {
			return nil, err
		}
		return o, nil
	case o.nodeName == "":
		return nil, errors.New("--node-name is required (or set NODE_NAME, e.g. from the downward API)")
	case o.execMode != "login" && o.execMode != "direct":
		return nil, fmt.Errorf("--exec-mode must be login or direct, not %q", o.execMode)
	case o.vmLauncher != "direct" && o.vmLauncher != "systemd":
		return nil, fmt.Errorf("--vm-launcher must be direct or systemd, not %q", o.vmLauncher)
	case o.vmLauncher == "systemd" && !filepath.IsAbs(o.smolvmPath):
		return nil, fmt.Errorf("--vm-launcher=systemd needs an absolute --smolvm-path (systemd runs it on the host), not %q", o.smolvmPath)
	case o.maxConcurrentReconciles < 1:
		return nil, fmt.Errorf("--max-concurrent-reconciles must be at least 1, not %d", o.maxConcurrentReconciles)
	case o.resyncPeriod < time.Second:
		return nil, fmt.Errorf("--resync-period must be at least 1s, not %s", o.resyncPeriod)
	case o.shutdownGrace < 0:
		return nil, fmt.Errorf("--shutdown-grace must not be negative, not %s", o.shutdownGrace)
	case o.smolvmRecheckPeriod < time.Second:
		return nil, fmt.Errorf("--smolvm-recheck-period must be at least 1s, not %s", o.smolvmRecheckPeriod)
	}
	if err := o.smolvmRoot.validate(o.smolvmPath, o.smolvmDataDir); err != nil {
		return nil, err
	}
	if err := o.timeouts.validate(); err != nil {
		return nil, err
	}
	if err := o.lease.validate(); err != nil {
		return nil, err
	}
	if err := o.exec.validate(); err != nil {
		return nil, err
	}
	if err := o.stepLogs.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

func main() {
	if reaper.IsInit() {
		// PID 1 of a container without hostPID or an init: be the init,
		// reaping smolvm's orphans, and run the manager as its child.
		os.Exit(reaper.Init())
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	err = run(ctrl.SetupSignalHandler(), o)
	if errors.Is(err, nodecheck.ErrRecovered) {
		// Exit so the kubelet restarts the agent with the Bottle controller.
		ctrl.Log.Info(err.Error())
		os.Exit(0)
	}
	if err != nil {
		ctrl.Log.Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	build := newAgent
	if o.mode == "cluster" {
		build = newCluster
	}
	mgr, err := build(ctx, ctrl.GetConfigOrDie(), o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// newScheme holds the built-in types and Bottles: what both modes read and
// write.
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}

// newAgent builds the agent's manager. The Bottle reconciler (or, on a node
// whose smolvm is unusable, the nodecheck reconciler) runs once this
// process holds the node's Lease, and starts new work only while it renews
// it (agentlease.Elector); the exec API, probes and metrics run in a
// standby too.
func newAgent(ctx context.Context, cfg *rest.Config, o *options) (ctrl.Manager, error) {
	log := ctrl.Log.WithName("setup")
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}

	copyDir, err := o.smolvmRoot.prepare()
	if err != nil {
		return nil, err
	}
	var env []string
	if o.smolvmDataDir != "" {
		env = append(env, "SMOLVM_DATA_DIR="+o.smolvmDataDir)
	}
	cli := smolvm.New(o.smolvmPath, env...)
	cli.Root = o.smolvmRoot.root
	cli.Timeouts = o.timeouts.Timeouts
	cli.DefaultExecTimeout = o.timeouts.exec
	var systemd *vmlauncher.Systemd
	if o.vmLauncher == "systemd" {
		systemd = &vmlauncher.Systemd{Socket: o.systemBusSocket, OverheadMiB: vmlauncher.DefaultOverheadMiB}
		cli.Launcher = systemd
	}
	log.Info("starting agent", "version", version.Version, "revision", version.Revision, "node", o.nodeName,
		"lease", o.lease.namespace+"/"+agentlease.Name(o.nodeName), "identity", o.lease.identity, "vmLauncher", o.vmLauncher, "smolvmRoot", o.smolvmRoot.root)

	lock, err := agentlease.NewLock(cfg, o.lease.namespace, o.nodeName, o.lease.identity,
		max(o.lease.renewDeadline/2, time.Second), ctrl.Log.WithName("lease"))
	if err != nil {
		return nil, fmt.Errorf("creating the node lease lock: %w", err)
	}
	// Not controller-runtime's leader election: see agentProcess.
	elector := agentlease.NewElector(lock, o.lease.duration, o.lease.renewDeadline, o.lease.retryPeriod, ctrl.Log.WithName("lease"))
	mgr, err := ctrl.NewManager(cfg, NewManagerOptions(scheme, o))
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	// What acts on the node's machines and Bottles starts once this
	// process holds the Lease; the exec API, probes and metrics run in a
	// standby too.
	elected := electedOnly{Manager: mgr, elected: elector.Elected()}
	mode := smolvm.ModeLogin
	if o.execMode == "direct" {
		mode = smolvm.ModeDirect
	}
	logs, err := o.stepLogs.open()
	if err != nil {
		return nil, err
	}
	// One record of every session, step and run of the node's Bottles, for
	// spec.lifecycle.stopAfterIdle and waking an idle-stopped Bottle.
	tracker := activity.New()
	if err := addExecServer(mgr, o, cli, mode, logs, tracker); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("lease", elector.Readyz()); err != nil {
		return nil, err
	}

	// A node that cannot run machines (smolvm missing or too old, the
	// agent outside the PID namespace smolvm sees, no systemd for the
	// systemd launcher) keeps the agent up and saying so (nodecheck)
	// rather than crash-looping or failing every start.
	checkSmolvm := func(ctx context.Context) error {
		v, err := cli.CheckVersion(ctx)
		if err != nil {
			return fmt.Errorf("smolvm at %s: %w", o.smolvmRoot.where(o.smolvmPath), err)
		}
		if err := smolvm.CheckRootPIDNamespace(o.smolvmRoot.root); err != nil {
			return err
		}
		if systemd != nil {
			if err := systemd.Check(ctx); err != nil {
				return err
			}
		}
		log.Info("using smolvm", "path", o.smolvmPath, "root", o.smolvmRoot.root, "version", v)
		return nil
	}
	if err := checkSmolvm(ctx); err != nil {
		log.Error(err, "this node cannot run machines; marking its Bottles and failing /readyz until it can",
			"path", o.smolvmPath, "root", o.smolvmRoot.root, "minimumVersion", smolvm.MinVersion)
		state := nodecheck.NewState(err)
		if err := mgr.AddReadyzCheck("smolvm", state.Readyz); err != nil {
			return nil, err
		}
		nc := &nodecheck.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bottle-agent"), State: state}
		if err := nc.SetupWithManager(elected); err != nil {
			return nil, err
		}
		if err := elected.Add(manager.RunnableFunc(func(ctx context.Context) error {
			return state.Watch(ctx, o.smolvmRecheckPeriod, checkSmolvm)
		})); err != nil {
			return nil, err
		}
		return &agentProcess{Manager: mgr, elector: elector}, nil
	}

	r := &agent.BottleReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("bottle-agent"),
		Machines:                cli,
		NodeName:                o.nodeName,
		ExecMode:                mode,
		ResyncPeriod:            o.resyncPeriod,
		ShutdownGrace:           o.shutdownGrace,
		MaxConcurrentReconciles: o.maxConcurrentReconciles,
		RequireReservation:      o.reservations,
		TempDir:                 copyDir,
		Lease:                   elector,
		Activity:                tracker,
	}
	if r.DigestKey, err = agent.LoadDigestKey(o.digestKeyFile); err != nil {
		return nil, fmt.Errorf("--digest-key-file: %w", err)
	}
	if logs != nil {
		r.StepLogs = logs
		if err := elected.Add(sweepStepLogs(mgr, logs, o.nodeName)); err != nil {
			return nil, err
		}
	}
	if err := r.SetupWithManager(elected, "bottle"); err != nil {
		return nil, fmt.Errorf("setting up the Bottle controller: %w", err)
	}
	tr := &agent.TemplateReconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Machines:      cli,
		NodeName:      o.nodeName,
		ExecMode:      mode,
		ResyncPeriod:  o.resyncPeriod,
		TempDir:       copyDir,
		Lease:         elector,
		ShutdownGrace: o.shutdownGrace,
	}
	if logs != nil {
		tr.StepLogs = logs
	}
	if err := tr.SetupWithManager(elected, "bottletemplate"); err != nil {
		return nil, fmt.Errorf("setting up the BottleTemplate controller: %w", err)
	}
	rr := &agent.BottleRunReconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Recorder:      mgr.GetEventRecorder("bottle-agent"),
		Machines:      cli,
		NodeName:      o.nodeName,
		ExecMode:      mode,
		Lease:         elector,
		ShutdownGrace: o.shutdownGrace,
		DigestKey:     r.DigestKey,
		Activity:      tracker,
	}
	if logs != nil {
		rr.Logs = logs
	}
	if err := rr.SetupWithManager(ctx, elected, "bottlerun"); err != nil {
		return nil, fmt.Errorf("setting up the BottleRun controller: %w", err)
	}
	return &agentProcess{Manager: mgr, elector: elector}, nil
}

// NewManagerOptions scopes the cache to this node's Bottles, filtered by the
// API server (spec.nodeName is a CRD selectable field), and keeps Secrets and
// ConfigMaps out of it: they are read on demand.
func NewManagerOptions(scheme *runtime.Scheme, o *options) ctrl.Options {
	opts := agent.ManagerOptions(scheme, o.nodeName)
	opts.Metrics = metricsserver.Options{BindAddress: o.metricsAddr}
	opts.HealthProbeBindAddress = o.probeAddr
	// The manager waits for the passes that drain a step at shutdown
	// (--shutdown-grace), and a little for the status write after it.
	opts.GracefulShutdownTimeout = ptr.To(o.shutdownGrace + 5*time.Second)
	opts.Controller = config.Controller{SkipNameValidation: &o.skipNameValidation}
	return opts
}
