package kubectlbottle

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newRetryCommand(o *options) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   "retry NAME [--step STEP]",
		Short: "Run a failed, timed-out or cancelled provisioning step again, and the steps after it",
		Long: `Asks the Bottle's agent to run its failed, timed-out or cancelled step again, and
every step after it, by setting the ` + v1.AnnotationRetry + ` annotation to a new
value. With --step, provisioning runs again from that step, even if it succeeded.
From git, set the same annotation to any new value.`,
		Example: `  kubectl bottle retry my-bottle
  kubectl bottle retry my-bottle --step install-deps`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientInNamespace()
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			b, err := c.Get(cmd.Context(), key)
			if err != nil {
				return err
			}
			if step != "" && !hasStep(b, step) {
				return fmt.Errorf("bottle %s has no provisioning step %q", args[0], step)
			}
			patch, err := RetryPatch(time.Now(), step)
			if err != nil {
				return err
			}
			if _, err := c.Patch(cmd.Context(), key, types.MergePatchType, patch); err != nil {
				return err
			}
			from := "its failed step"
			if step != "" {
				from = "step " + step
			}
			_, err = fmt.Fprintf(o.streams.Out, "bottle.agents.bot-bottle.dev/%s retry requested from %s\n", args[0], from)
			return err
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "Run again from this step, even if it succeeded.")
	return cmd
}

func hasStep(b *v1.Bottle, name string) bool {
	for _, s := range b.Spec.Provision {
		if s.Name == name {
			return true
		}
	}
	return false
}

// RetryPatch is the merge patch that asks for a retry: a new token (the
// time, to the nanosecond) and the step to start from, or no step.
func RetryPatch(now time.Time, step string) ([]byte, error) {
	var stepValue any // null removes a step left by an earlier retry
	if step != "" {
		stepValue = step
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		v1.AnnotationRetry:     now.UTC().Format(time.RFC3339Nano),
		v1.AnnotationRetryStep: stepValue,
	}}})
}
