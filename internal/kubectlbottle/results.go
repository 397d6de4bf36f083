package kubectlbottle

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// maxOutputColumn bounds the OUTPUT column so one long line keeps the table
// readable.
const maxOutputColumn = 60

func newResultsCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "results NAME [-o json|yaml]",
		Short: "Show every provisioning step of a Bottle: its result, or that it is running or pending",
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
			b, err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]})
			if err != nil {
				return err
			}
			return RenderResults(o.streams.Out, b, output, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (default: a table).")
	return cmd
}

// RenderResults prints every step of the Bottle as a table (format ""):
// the recorded result, or running, or pending for the steps that have not
// run yet, after the template steps a forked Bottle inherited. json and
// yaml print status.execResults as recorded. now dates the steps still
// running.
func RenderResults(w io.Writer, b *v1.Bottle, format string, now time.Time) error {
	results := b.Status.ExecResults
	if results == nil {
		results = []v1.ExecResult{}
	}
	switch format {
	case "json":
		out, err := json.MarshalIndent(results, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	case "yaml":
		out, err := yaml.Marshal(results)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	rows := stepRows(b)
	if len(rows) == 0 && (b.Status.Template == nil || len(b.Status.Template.Steps) == 0) {
		_, err := fmt.Fprintln(w, "This Bottle has no provisioning steps.")
		return err
	}
	// kubectl's table layout (cli-runtime's printers.GetNewTabWriter).
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	if _, err := fmt.Fprintln(tw, "STEP\tSTATUS\tUSER\tEXIT CODE\tDURATION\tOUTPUT"); err != nil {
		return err
	}
	if t := b.Status.Template; t != nil {
		// A fork's first steps ran once, in its template's golden: their
		// results are the template's (kubectl bottle templates).
		for _, step := range t.Steps {
			if _, err := fmt.Fprintf(tw, "%s\tInherited\t-\t-\t-\tfrom template %s, generation %d\n", step.Name, t.Name, t.Generation); err != nil {
				return err
			}
		}
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.status, orDash(r.User), exitCodeColumn(r.ExecResult),
			durationColumn(r.ExecResult, now), lastLine(r.ExecResult)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// stepRow is one line of the table.
type stepRow struct {
	v1.ExecResult
	status string
}

// stepRows pairs each step of the spec with its result (results are
// recorded in step order), marking the steps without one as pending. A
// result the spec no longer names is listed after, as recorded.
func stepRows(b *v1.Bottle) []stepRow {
	results := b.Status.ExecResults
	var rows []stepRow
	for i, step := range b.Spec.Provision {
		if i < len(results) && results[i].Name == step.Name {
			rows = append(rows, stepRow{results[i], resultStatus(results[i])})
			continue
		}
		user := step.User
		if user == "" {
			user = b.Spec.ExecUser
		}
		rows = append(rows, stepRow{v1.ExecResult{Name: step.Name, User: user}, "Pending"})
	}
	for i := len(b.Spec.Provision); i < len(results); i++ {
		rows = append(rows, stepRow{results[i], resultStatus(results[i])})
	}
	return rows
}

func resultStatus(r v1.ExecResult) string {
	switch {
	case r.StartedAt == nil:
		return "Pending"
	case r.FinishedAt == nil:
		return "Running"
	case r.Error != "" || r.ExitCode == nil || *r.ExitCode != 0:
		return "Failed"
	}
	return "Succeeded"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func exitCodeColumn(r v1.ExecResult) string {
	if r.ExitCode == nil {
		return "-"
	}
	return strconv.Itoa(int(*r.ExitCode))
}

func durationColumn(r v1.ExecResult, now time.Time) string {
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
func lastLine(r v1.ExecResult) string {
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
