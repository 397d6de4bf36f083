package kubectlbottle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Exit codes of `wait`, besides 0 (the phase was reached).
const (
	WaitExitFailed  = 1 // the Bottle failed, was deleted, or an error occurred
	WaitExitTimeout = 2 // --timeout elapsed first
)

func newWaitCommand(o *options) *cobra.Command {
	var forPhase string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME [--for=Ready] [--timeout=10m]",
		Short: "Watch a Bottle's phase until it reaches --for (exit 1 if it fails, 2 on timeout)",
		Example: `  kubectl bottle wait my-bottle
  kubectl bottle wait my-bottle --for=Stopped --timeout=2m`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			phase, ok := parsePhase(forPhase)
			if !ok {
				return fmt.Errorf("--for must be a Bottle phase (%s), not %q", strings.Join(phaseNames(), ", "), forPhase)
			}
			c, ns, err := o.clientInNamespace()
			if err != nil {
				return err
			}
			return waitForPhase(cmd.Context(), c, o.streams.Out, types.NamespacedName{Namespace: ns, Name: args[0]},
				phase, timeout)
		},
	}
	cmd.Flags().StringVar(&forPhase, "for", string(v1.PhaseReady), "The phase to wait for (any case: ready, Ready, READY).")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "How long to wait; 0 waits forever.")
	return cmd
}

var phases = []v1.Phase{
	v1.PhasePending, v1.PhaseCreating, v1.PhaseStarting,
	v1.PhaseCopyingFiles, v1.PhaseProvisioning, v1.PhaseReady,
	v1.PhaseStopped, v1.PhaseFailed, v1.PhaseDeleting,
}

// parsePhase matches a phase whatever its case, as kubectl wait matches
// condition names.
func parsePhase(s string) (v1.Phase, bool) {
	for _, p := range phases {
		if strings.EqualFold(s, string(p)) {
			return p, true
		}
	}
	return "", false
}

func phaseNames() []string {
	out := make([]string, len(phases))
	for i, p := range phases {
		out[i] = string(p)
	}
	return out
}

// waitForPhase prints the Bottle's phase each time it changes, like
// `kubectl rollout status`, until it is target for the current generation.
// It returns an *ExitError with WaitExitFailed when the Bottle fails or
// disappears, WaitExitTimeout when timeout elapses.
func waitForPhase(ctx context.Context, c *bottleClient, out io.Writer, key types.NamespacedName, target v1.Phase, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// A missing Bottle is an error now, not a timeout later.
	if _, err := c.Get(ctx, key); err != nil {
		return &ExitError{Code: WaitExitFailed, Err: err}
	}
	byName := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = byName
			return c.List(ctx, key.Namespace, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = byName
			return c.Watch(ctx, key.Namespace, opts)
		},
	}
	var last string
	var failure error
	_, err := watchtools.UntilWithSync(ctx, lw, &v1.Bottle{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			failure = fmt.Errorf("bottle %q was deleted", key.Name)
			return true, nil
		}
		b, ok := ev.Object.(*v1.Bottle)
		if !ok {
			return false, nil
		}
		line := phaseLine(b)
		if line != last {
			_, _ = fmt.Fprintln(out, line)
			last = line
		}
		current := b.Status.ObservedGeneration == 0 || b.Status.ObservedGeneration >= b.Generation
		switch {
		case b.Status.Phase == target && current:
			return true, nil
		case b.Status.Phase == v1.PhaseFailed && current:
			failure = fmt.Errorf("bottle %q failed%s", key.Name, readyMessage(b))
			return true, nil
		}
		return false, nil
	})
	switch {
	case failure != nil:
		return &ExitError{Code: WaitExitFailed, Err: failure}
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &ExitError{Code: WaitExitTimeout, Err: fmt.Errorf("timed out after %s waiting for bottle %q to be %s", timeout, key.Name, target)}
	}
	return &ExitError{Code: WaitExitFailed, Err: err}
}

func phaseLine(b *v1.Bottle) string {
	phase := string(b.Status.Phase)
	if phase == "" {
		phase = "(no status yet)"
	}
	return fmt.Sprintf("bottle/%s: %s%s", b.Name, phase, readyMessage(b))
}

func readyMessage(b *v1.Bottle) string {
	if c := apimeta.FindStatusCondition(b.Status.Conditions, v1.ConditionReady); c != nil && c.Message != "" {
		return ": " + c.Message
	}
	return ""
}
