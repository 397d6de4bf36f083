package main

import (
	"context"
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// stepLogOptions configure where the agent keeps each provisioning step's
// full output (kubectl bottle logs).
type stepLogOptions struct {
	dir       string
	limit     string
	nodeLimit string
}

func (s *stepLogOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.dir, "step-log-dir", "/var/lib/bottle-agent/step-logs", "Directory keeping each provisioning step's full output on this node (kubectl bottle logs); empty keeps none.")
	fs.StringVar(&s.limit, "step-log-limit", "16Mi", "Bytes kept per step (a quantity: 16Mi, 1Gi); the oldest bytes are dropped first.")
	fs.StringVar(&s.nodeLimit, "step-log-node-limit", "2Gi", "Bytes kept for all step logs of the node together; beginning a log removes the oldest finished ones first (0: no bound).")
}

func (s *stepLogOptions) nodeLimitBytes() (int64, error) {
	q, err := resource.ParseQuantity(s.nodeLimit)
	if err != nil || q.Value() < 0 {
		return 0, fmt.Errorf("--step-log-node-limit must be a quantity such as 2Gi, or 0, not %q", s.nodeLimit)
	}
	return q.Value(), nil
}

func (s *stepLogOptions) limitBytes() (int64, error) {
	q, err := resource.ParseQuantity(s.limit)
	if err != nil || q.Value() < 1 {
		return 0, fmt.Errorf("--step-log-limit must be a positive quantity such as 16Mi, not %q", s.limit)
	}
	return q.Value(), nil
}

func (s *stepLogOptions) validate() error {
	limit, err := s.limitBytes()
	if err != nil {
		return err
	}
	node, err := s.nodeLimitBytes()
	if err != nil {
		return err
	}
	if node != 0 && node < limit {
		return fmt.Errorf("--step-log-node-limit (%s) must be 0 or at least --step-log-limit (%s)", s.nodeLimit, s.limit)
	}
	return nil
}

// open returns the store, or nil when --step-log-dir is empty.
func (s *stepLogOptions) open() (*steplog.Store, error) {
	if s.dir == "" {
		return nil, nil
	}
	limit, err := s.limitBytes()
	if err != nil {
		return nil, err
	}
	node, err := s.nodeLimitBytes()
	if err != nil {
		return nil, err
	}
	st, err := steplog.New(s.dir, limit)
	if err != nil {
		return nil, err
	}
	st.SetNodeLimit(node)
	return st, nil
}

// sweepStepLogs removes, once the cache has synced, the logs of every UID
// that is neither a Bottle of this node nor a BottleRun, nor the golden a
// BottleTemplate's entry for this node names: Bottles deleted while no
// agent ran here, or whose finalizer was removed by hand, and goldens of
// templates gone, edited (a new golden) or no longer kept here meanwhile.
// The cache holds this node's Bottles only, and a Bottle never changes
// node.
func sweepStepLogs(mgr manager.Manager, store *steplog.Store, node string) manager.RunnableFunc {
	return func(ctx context.Context) error {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil
		}
		var bottles v1.BottleList
		if err := mgr.GetClient().List(ctx, &bottles); err != nil {
			return fmt.Errorf("listing Bottles to sweep step logs: %w", err)
		}
		// Runs keep their output in the same store, under their own UID.
		var runs v1.BottleRunList
		if err := mgr.GetClient().List(ctx, &runs); err != nil {
			return fmt.Errorf("listing BottleRuns to sweep step logs: %w", err)
		}
		// A golden keeps its logs under a key of its own (steplog.GoldenKey).
		var templates v1.BottleTemplateList
		if err := mgr.GetClient().List(ctx, &templates); err != nil {
			return fmt.Errorf("listing BottleTemplates to sweep step logs: %w", err)
		}
		known := map[string]bool{}
		for _, t := range templates.Items {
			for _, n := range t.Status.Nodes {
				if n.NodeName == node && n.GoldenMachine != "" {
					known[steplog.GoldenKey(string(t.UID), n.GoldenMachine)] = true
				}
			}
		}
		for _, b := range bottles.Items {
			known[string(b.UID)] = true
		}
		for _, r := range runs.Items {
			known[string(r.UID)] = true
		}
		n, err := store.Sweep(func(uid string) bool { return known[uid] })
		if n > 0 {
			mgr.GetLogger().Info("removed the step logs of Bottles, runs and goldens that are gone", "count", n)
		}
		if err != nil {
			mgr.GetLogger().Error(err, "sweeping step logs")
		}
		return nil
	}
}
