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
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

type options struct {
	nodeName                string
	smolvmPath              string
	smolvmDataDir           string
	execMode                string
	metricsAddr             string
	probeAddr               string
	maxConcurrentReconciles int
	resyncPeriod            time.Duration
	digestKeyFile           string
	exec                    execOptions
	stepLogs                stepLogOptions
	zap                     zap.Options
}

// parseFlags returns a one-line error for bad or missing flags.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "The node whose Bottles this agent runs (default $NODE_NAME).")
	fs.StringVar(&o.smolvmPath, "smolvm-path", "smolvm", "Path of the smolvm binary (or the simulator).")
	fs.StringVar(&o.smolvmDataDir, "smolvm-data-dir", os.Getenv("SMOLVM_DATA_DIR"), "SMOLVM_DATA_DIR for smolvm; empty keeps smolvm's default.")
	fs.StringVar(&o.execMode, "exec-mode", "login", "How steps switch user in the guest: login (runuser -l USER -c) or direct (runuser -u USER --, for guests whose PAM login setup hangs).")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Bottles reconciled (and provisioning steps run) in parallel.")
	fs.DurationVar(&o.resyncPeriod, "resync-period", time.Minute, "How often a Ready Bottle's machine is checked for drift.")
	fs.StringVar(&o.digestKeyFile, "digest-key-file", "/etc/bottle-digest/key", "Key (at least 32 bytes) of the HMACs that status.files records for Secret content, shared by every agent (a mounted Secret); when the file is missing, each agent process uses a random key of its own.")
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
	case o.nodeName == "":
		return nil, errors.New("--node-name is required (or set NODE_NAME, e.g. from the downward API)")
	case o.execMode != "login" && o.execMode != "direct":
		return nil, fmt.Errorf("--exec-mode must be login or direct, not %q", o.execMode)
	case o.maxConcurrentReconciles < 1:
		return nil, fmt.Errorf("--max-concurrent-reconciles must be at least 1, not %d", o.maxConcurrentReconciles)
	case o.resyncPeriod < time.Second:
		return nil, fmt.Errorf("--resync-period must be at least 1s, not %s", o.resyncPeriod)
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
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "manager exited")
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	log := ctrl.Log.WithName("setup")
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}

	var env []string
	if o.smolvmDataDir != "" {
		env = append(env, "SMOLVM_DATA_DIR="+o.smolvmDataDir)
	}
	cli := smolvm.New(o.smolvmPath, env...)
	version, err := cli.CheckVersion(ctx)
	if err != nil {
		return fmt.Errorf("smolvm at %q: %w", o.smolvmPath, err)
	}
	log.Info("using smolvm", "path", o.smolvmPath, "version", version, "node", o.nodeName)

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), NewManagerOptions(scheme, o))
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	mode := smolvm.ModeLogin
	if o.execMode == "direct" {
		mode = smolvm.ModeDirect
	}
	logs, err := o.stepLogs.open()
	if err != nil {
		return err
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
	}
	if r.DigestKey, err = controllers.LoadDigestKey(o.digestKeyFile); err != nil {
		return fmt.Errorf("--digest-key-file: %w", err)
	}
	if logs != nil {
		r.StepLogs = logs
	}
	if err := r.SetupWithManager(mgr, "bottle"); err != nil {
		return fmt.Errorf("setting up the Bottle controller: %w", err)
	}
	if err := addExecServer(mgr, o, cli, mode, logs); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting agent")
	return mgr.Start(ctx)
}

// NewManagerOptions scopes the cache to this node's Bottles, filtered by the
// API server (spec.nodeName is a CRD selectable field), and keeps Secrets and
// ConfigMaps out of it: they are read on demand.
func NewManagerOptions(scheme *runtime.Scheme, o *options) ctrl.Options {
	opts := controllers.ManagerOptions(scheme, o.nodeName)
	opts.Metrics = metricsserver.Options{BindAddress: o.metricsAddr}
	opts.HealthProbeBindAddress = o.probeAddr
	return opts
}
