package main

import (
	"context"
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/controllers/templatesummary"
	"github.com/bot-bottle/bottle-controller/internal/version"
)

// ClusterLeaderElectionID is the Lease that keeps one cluster controller
// active, in the agents' namespace.
const ClusterLeaderElectionID = "bottle-cluster-controller"

// clusterOptions are the flags of --mode=cluster.
type clusterOptions struct {
	placement.Options
	leaderElect                 bool
	overheadCPU, overheadMemory string
}

func (c *clusterOptions) bindFlags(fs *flag.FlagSet) {
	c.Options = placement.DefaultOptions()
	fs.BoolVar(&c.leaderElect, "leader-elect", true, "Cluster mode: elect one active cluster controller through the Lease "+ClusterLeaderElectionID+" in --lease-namespace.")
	fs.StringVar(&c.PauseImage, "pause-image", placement.DefaultPauseImage, "Cluster mode: the reservation Pods' only container.")
	fs.StringVar(&c.overheadCPU, "reservation-overhead-cpu", placement.DefaultOverheadCPU, "Cluster mode: CPU added to each VM's vCPUs in its reservation Pod's requests (the VMM's own threads).")
	fs.StringVar(&c.overheadMemory, "reservation-overhead-memory", placement.DefaultOverheadMem, "Cluster mode: memory added to each VM's memory in its reservation Pod's requests (the VMM's own memory).")
	fs.DurationVar(&c.AgentTimeout, "agent-timeout", placement.DefaultAgentTimeout, "Cluster mode: how long after a node agent's Lease was last seen renewed its Bottles are reported NodeAgentUnavailable.")
	fs.DurationVar(&c.AgentGrace, "agent-grace", placement.DefaultAgentGrace, "Cluster mode: how long a Bottle stays NodeAgentUnavailable (Reconciling) before it is Stalled.")
}

// validate parses the quantities and checks the rest.
func (c *clusterOptions) validate(reservations bool, agentNamespace string) error {
	c.Reservations, c.AgentNamespace = reservations, agentNamespace
	var err error
	if c.OverheadCPU, err = resource.ParseQuantity(c.overheadCPU); err != nil {
		return fmt.Errorf("--reservation-overhead-cpu: %w", err)
	}
	if c.OverheadMemory, err = resource.ParseQuantity(c.overheadMemory); err != nil {
		return fmt.Errorf("--reservation-overhead-memory: %w", err)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("cluster mode: %w", err)
	}
	return nil
}

// newCluster builds the cluster controller's manager: placement, heartbeats,
// node labels and BottleTemplates' status summaries, leader-elected.
func newCluster(ctx context.Context, cfg *rest.Config, o *options) (ctrl.Manager, error) {
	log := ctrl.Log.WithName("setup")
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	c := &o.cluster
	log.Info("starting cluster controller", "version", version.Version, "revision", version.Revision,
		"reservations", c.Reservations, "agentNamespace", c.AgentNamespace, "agentTimeout", c.AgentTimeout)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         placement.CacheOptions(c.AgentNamespace),
		Metrics:                       metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                c.leaderElect,
		LeaderElectionID:              ClusterLeaderElectionID,
		LeaderElectionNamespace:       o.lease.namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.lease.duration,
		RenewDeadline:                 &o.lease.renewDeadline,
		RetryPeriod:                   &o.lease.retryPeriod,
		Controller:                    config.Controller{SkipNameValidation: &o.skipNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	r := &placement.Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("bottle-cluster"),
		Heartbeats: placement.NewHeartbeats(c.AgentTimeout),
		Options:    c.Options,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("setting up the placement controller: %w", err)
	}
	fr := &placement.FreshRunReconciler{Client: mgr.GetClient()}
	if err := fr.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the fresh-Bottle run controller: %w", err)
	}
	rt := &placement.RetentionReconciler{Client: mgr.GetClient()}
	if err := rt.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the retention controller: %w", err)
	}
	ts := &templatesummary.Reconciler{Client: mgr.GetClient(), Heartbeats: r.Heartbeats, AgentNamespace: c.AgentNamespace}
	if err := ts.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the template summary controller: %w", err)
	}
	return mgr, nil
}
