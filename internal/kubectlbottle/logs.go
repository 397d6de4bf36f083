package kubectlbottle

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newLogsCommand(o *options) *cobra.Command {
	l := &LogRequest{}
	var template string
	cmd := &cobra.Command{
		Use:   "logs (NAME | --template TEMPLATE [--node NODE]) [--step STEP] [-f] [--tail N] [--timestamps]",
		Short: "Print the full output of a provisioning step of a Bottle or of a template's golden (needs get on bottles/log or bottletemplates/log)",
		Long: `Print a provisioning step's output as the Bottle's agent kept it on its node:
stdout and stderr interleaved in the order they arrived, up to the agent's
per-step limit (16 MiB by default; older bytes are dropped first).

Without --step it prints the step that runs now, else the last one that ran.
With -f it follows the step while it runs and ends when the step ends.

With --template it prints a step of the BottleTemplate's golden machine
instead: a template has a golden on each node that keeps one, each with its
own steps' results and logs; --node names the node (it may be left out when
only one node has a golden: kubectl bottle templates lists them).`,
		Example: `  kubectl bottle logs my-bottle
  kubectl bottle logs my-bottle --step npm-install -f
  kubectl bottle logs my-bottle --step npm-install --tail 20 --timestamps
  kubectl bottle logs --template claude-code --node worker-1 --step install-claude`,
		Args: func(cmd *cobra.Command, args []string) error {
			if template != "" {
				if len(args) > 0 {
					return errors.New("give either a Bottle's NAME or --template TEMPLATE, not both")
				}
				return nil
			}
			if cmd.Flags().Changed("node") {
				return errors.New("--node goes with --template: a Bottle's steps ran on its own node")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			if l.Namespace, err = o.namespace(); err != nil {
				return err
			}
			if template != "" {
				l.Name, l.Template = template, true
				return l.Stream(cmd.Context(), cfg, o.streams.Out)
			}
			l.Name = args[0]
			return o.explainUnreachable(cmd.Context(), l.Namespace, l.Name, l.Stream(cmd.Context(), cfg, o.streams.Out))
		},
	}
	cmd.Flags().StringVar(&l.Step, "step", "", "The provisioning step (default: the running one, else the last that ran).")
	cmd.Flags().BoolVarP(&l.Follow, "follow", "f", false, "Follow the step's output until the step ends.")
	cmd.Flags().Int64Var(&l.TailLines, "tail", -1, "Lines from the end to print; -1 prints everything kept.")
	cmd.Flags().BoolVar(&l.Timestamps, "timestamps", false, "Prefix each line with the time it reached the agent (RFC 3339).")
	cmd.Flags().StringVar(&template, "template", "", "Read the steps of this BottleTemplate's golden machine instead of a Bottle's.")
	cmd.Flags().StringVar(&l.Node, "node", "", "With --template: the node whose golden to read (default: the only node with one).")
	_ = cmd.RegisterFlagCompletionFunc("template", o.completeTemplateNames)
	return cmd
}

// LogRequest is one read of bottles/log, or of bottletemplates/log.
type LogRequest struct {
	Namespace, Name, Step string
	// Template reads the golden steps of the BottleTemplate Name on Node
	// (empty: the only node with a golden).
	Template           bool
	Node               string
	Follow, Timestamps bool
	// TailLines < 0 means every line kept.
	TailLines int64
}

// Stream copies the log to w as it arrives.
func (l *LogRequest) Stream(ctx context.Context, cfg *rest.Config, w io.Writer) error {
	rc, err := subresourceClient(cfg)
	if err != nil {
		return err
	}
	resource := v1.BottleResource
	if l.Template {
		resource = v1.BottleTemplateResource
	}
	req := rc.Get().Namespace(l.Namespace).Resource(resource).Name(l.Name).SubResource(v1.SubresourceLog)
	if l.Template && l.Node != "" {
		req = req.Param("node", l.Node)
	}
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
