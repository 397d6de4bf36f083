package kubectlbottle

import (
	"context"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newLogsCommand(o *options) *cobra.Command {
	l := &LogRequest{}
	cmd := &cobra.Command{
		Use:   "logs NAME [--step STEP] [-f] [--tail N] [--timestamps]",
		Short: "Print the full output of a provisioning step (needs get on bottles/log)",
		Long: `Print a provisioning step's output as the Bottle's agent kept it on its node:
stdout and stderr interleaved in the order they arrived, up to the agent's
per-step limit (16 MiB by default; older bytes are dropped first).

Without --step it prints the step that runs now, else the last one that ran.
With -f it follows the step while it runs and ends when the step ends.`,
		Example: `  kubectl bottle logs my-bottle
  kubectl bottle logs my-bottle --step npm-install -f
  kubectl bottle logs my-bottle --step npm-install --tail 20 --timestamps`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			if l.Namespace, err = o.namespace(); err != nil {
				return err
			}
			l.Name = args[0]
			return o.explainUnreachable(cmd.Context(), l.Namespace, l.Name, l.Stream(cmd.Context(), cfg, o.streams.Out))
		},
	}
	cmd.Flags().StringVar(&l.Step, "step", "", "The provisioning step (default: the running one, else the last that ran).")
	cmd.Flags().BoolVarP(&l.Follow, "follow", "f", false, "Follow the step's output until the step ends.")
	cmd.Flags().Int64Var(&l.TailLines, "tail", -1, "Lines from the end to print; -1 prints everything kept.")
	cmd.Flags().BoolVar(&l.Timestamps, "timestamps", false, "Prefix each line with the time it reached the agent (RFC 3339).")
	return cmd
}

// LogRequest is one read of bottles/log.
type LogRequest struct {
	Namespace, Name, Step string
	Follow, Timestamps    bool
	// TailLines < 0 means every line kept.
	TailLines int64
}

// Stream copies the log to w as it arrives.
func (l *LogRequest) Stream(ctx context.Context, cfg *rest.Config, w io.Writer) error {
	rc, err := subresourceClient(cfg)
	if err != nil {
		return err
	}
	req := rc.Get().Namespace(l.Namespace).Resource(v1.BottleResource).Name(l.Name).SubResource(v1.SubresourceLog)
	if l.Step != "" {
		req = req.Param("step", l.Step)
	}
	if l.Follow {
		req = req.Param("follow", "true")
	}
	if l.Timestamps {
		req = req.Param("timestamps", "true")
	}
	if l.TailLines >= 0 {
		req = req.Param("tailLines", strconv.FormatInt(l.TailLines, 10))
	}
	body, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = body.Close() }()
	_, err = io.Copy(w, body)
	if ctx.Err() != nil {
		return nil // interrupted (Ctrl-C) while following
	}
	return err
}
