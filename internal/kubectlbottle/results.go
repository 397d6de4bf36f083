package kubectlbottle

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	agentsv1alpha1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// maxOutputColumn bounds the OUTPUT column so one long line keeps the table
// readable.
const maxOutputColumn = 60

func newResultsCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "results NAME [-o json|yaml]",
		Short: "Show the results of a Bottle's provisioning steps",
		Example: `  kubectl bottle results my-bottle
  kubectl bottle results my-bottle -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return fmt.Errorf("--output must be json or yaml, not %q", output)
			}
			c, ns, err := o.clientInNamespace()
			if err != nil {
				return err
			}
			b := &agentsv1alpha1.Bottle{}
			if err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]}, b); err != nil {
				return err
			}
			return RenderResults(o.streams.Out, b.Status.ExecResults, output, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (default: a table).")
	return cmd
}

// RenderResults prints results as a table (format "") or as a JSON or YAML
// list. now dates the steps still running.
func RenderResults(w io.Writer, results []agentsv1alpha1.ExecResult, format string, now time.Time) error {
	if results == nil {
		results = []agentsv1alpha1.ExecResult{}
	}
	switch format {
	case "json":
		b, err := json.MarshalIndent(results, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(results)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	if len(results) == 0 {
		_, err := fmt.Fprintln(w, "No provisioning steps have run.")
		return err
	}
	tw := printers.GetNewTabWriter(w)
	if _, err := fmt.Fprintln(tw, "STEP\tUSER\tEXIT CODE\tDURATION\tOUTPUT"); err != nil {
		return err
	}
	for _, r := range results {
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, orDash(r.User), exitCodeColumn(r), durationColumn(r, now), lastLine(r)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func exitCodeColumn(r agentsv1alpha1.ExecResult) string {
	if r.ExitCode == nil {
		return "-"
	}
	return strconv.Itoa(int(*r.ExitCode))
}

func durationColumn(r agentsv1alpha1.ExecResult, now time.Time) string {
	switch {
	case r.StartedAt == nil:
		return "-"
	case r.FinishedAt == nil:
		return "running " + roundDuration(now.Sub(r.StartedAt.Time)).String()
	}
	return roundDuration(r.FinishedAt.Sub(r.StartedAt.Time)).String()
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// lastLine is the step's last non-empty line of stdout, else of stderr,
// with control characters replaced so it cannot break the table or the
// terminal.
func lastLine(r agentsv1alpha1.ExecResult) string {
	line := lastNonEmptyLine(r.Stdout)
	if line == "" {
		line = lastNonEmptyLine(r.Stderr)
	}
	if line == "" {
		return "-"
	}
	line = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, line)
	if runes := []rune(line); len(runes) > maxOutputColumn {
		line = string(runes[:maxOutputColumn-1]) + "…"
	}
	return line
}

func lastNonEmptyLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
