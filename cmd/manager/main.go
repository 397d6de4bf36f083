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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/nodecheck"
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
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles,
		"Bottles reconciled (and provisioning steps and smolvm processes run) in parallel; passes mostly wait on their VMs.")
	fs.DurationVar(&o.resyncPeriod, "resync-period", time.Minute, "How often a Ready Bottle's machine is checked for drift.")
	fs.StringVar(&o.digestKeyFile, "digest-key-file", "/etc/bottle-digest/key", "Key (at least 32 bytes) of the HMACs that status.files records for Secret content, shared by every agent (a mounted Secret); when the file is missing, each agent process uses a random key of its own.")
	fs.DurationVar(&o.smolvmRecheckPeriod, "smolvm-recheck-period", 30*time.Second, "While smolvm is missing or too old, how often to check it again (the agent restarts once it is usable).")
	o.lease.bindFlags(fs)
	o.timeouts.bindFlags(fs)
	fs.StringVar(&o.vmLauncher, "vm-launcher", "direct", "Where `machine start` leaves the VM process: direct (a child of the agent, in its container: an agent restart stops the VMs; for make dev and tests) or systemd (a transient unit bottle-vm-<machine>.service on the host, started over D-Bus, with the VM's CPUs and memory as limits: the VM outlives the agent).")
	fs.StringVar(&o.systemBusSocket, "system-bus-socket", vmlauncher.DefaultSystemBusSocket, "The host's D-Bus system bus socket, for --vm-launcher=systemd.")
	o.exec.bindFlags(fs)
	o.stepLogs.bindFlags(fs)
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, err
	}
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
// whose smolvm is unusable, the nodecheck reconciler) runs only while this
// process holds the node's Lease; the exec API, probes and metrics run in a
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
	if o.vmLauncher == "systemd" {
		cli.Launcher = &vmlauncher.Systemd{Socket: o.systemBusSocket, OverheadMiB: vmlauncher.DefaultOverheadMiB}
	}
	log.Info("starting agent", "version", version.Version, "revision", version.Revision, "node", o.nodeName,
		"lease", o.lease.namespace+"/"+agentlease.Name(o.nodeName), "identity", o.lease.identity, "vmLauncher", o.vmLauncher, "smolvmRoot", o.smolvmRoot.root)

	lock, err := agentlease.NewLock(cfg, o.lease.namespace, o.nodeName, o.lease.identity,
		max(o.lease.renewDeadline/2, time.Second), ctrl.Log.WithName("lease"))
	if err != nil {
		return nil, fmt.Errorf("creating the node lease lock: %w", err)
	}
	mopts := NewManagerOptions(scheme, o)
	mopts.LeaderElection = true
	mopts.LeaderElectionID = agentlease.Name(o.nodeName)
	mopts.LeaderElectionNamespace = o.lease.namespace
	mopts.LeaderElectionResourceLockInterface = lock
	mopts.LeaseDuration = &o.lease.duration
	mopts.RenewDeadline = &o.lease.renewDeadline
	mopts.RetryPeriod = &o.lease.retryPeriod
	// On shutdown, stop the reconciler (cancelling its steps) and then
	// release the Lease, so a standby takes over at once.
	mopts.LeaderElectionReleaseOnCancel = true
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	mode := smolvm.ModeLogin
	if o.execMode == "direct" {
		mode = smolvm.ModeDirect
	}
	logs, err := o.stepLogs.open()
	if err != nil {
		return nil, err
	}
	if err := addExecServer(mgr, o, cli, mode, logs); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("lease", agentlease.ReadyzCheck(mgr.Elected(), lock)); err != nil {
		return nil, err
	}

	// A node whose smolvm is missing or too old keeps the agent up and
	// saying so (nodecheck) rather than crash-looping.
	checkSmolvm := func(ctx context.Context) error {
		v, err := cli.CheckVersion(ctx)
		if err == nil {
			log.Info("using smolvm", "path", o.smolvmPath, "root", o.smolvmRoot.root, "version", v)
		}
		return err
	}
	if err := checkSmolvm(ctx); err != nil {
		log.Error(err, "this node cannot run machines; marking its Bottles and failing /readyz until smolvm is usable",
			"path", o.smolvmPath, "root", o.smolvmRoot.root, "minimumVersion", smolvm.MinVersion)
		state := nodecheck.NewState(fmt.Errorf("smolvm at %s: %w", o.smolvmRoot.where(o.smolvmPath), err))
		if err := mgr.AddReadyzCheck("smolvm", state.Readyz); err != nil {
			return nil, err
		}
		nc := &nodecheck.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bottle-agent"), State: state}
		if err := nc.SetupWithManager(mgr); err != nil {
			return nil, err
		}
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			return state.Watch(ctx, o.smolvmRecheckPeriod, checkSmolvm)
		})); err != nil {
			return nil, err
		}
		return mgr, nil
	}

	r := &controllers.BottleReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("bottle-agent"),
		Machines:                cli,
		NodeName:                o.nodeName,
		ExecMode:                mode,
		ResyncPeriod:            o.resyncPeriod,
		MaxConcurrentReconciles: o.maxConcurrentReconciles,
		RequireReservation:      o.reservations,
		TempDir:                 copyDir,
	}
	if r.DigestKey, err = controllers.LoadDigestKey(o.digestKeyFile); err != nil {
		return nil, fmt.Errorf("--digest-key-file: %w", err)
	}
	if logs != nil {
		r.StepLogs = logs
	}
	if err := r.SetupWithManager(mgr, "bottle"); err != nil {
		return nil, fmt.Errorf("setting up the Bottle controller: %w", err)
	}
	tr := &controllers.TemplateReconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Machines:     cli,
		NodeName:     o.nodeName,
		ExecMode:     mode,
		ResyncPeriod: o.resyncPeriod,
	}
	if err := tr.SetupWithManager(mgr, "bottletemplate"); err != nil {
		return nil, fmt.Errorf("setting up the BottleTemplate controller: %w", err)
	}
	return mgr, nil
}

// NewManagerOptions scopes the cache to this node's Bottles, filtered by the
// API server (spec.nodeName is a CRD selectable field), and keeps Secrets and
// ConfigMaps out of it: they are read on demand.
func NewManagerOptions(scheme *runtime.Scheme, o *options) ctrl.Options {
	opts := controllers.ManagerOptions(scheme, o.nodeName)
	opts.Metrics = metricsserver.Options{BindAddress: o.metricsAddr}
	opts.HealthProbeBindAddress = o.probeAddr
	opts.Controller = config.Controller{SkipNameValidation: &o.skipNameValidation}
	return opts
}
