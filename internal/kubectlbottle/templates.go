package kubectlbottle

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newTemplatesCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "templates [NAME]",
		Short: "Show where each BottleTemplate has a golden machine: per node, its generation, phase, and free and held slots",
		Example: `  kubectl bottle templates
  kubectl bottle templates claude-code -n team-a`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeTemplateNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientInNamespace()
			if err != nil {
				return err
			}
			var templates []v1.BottleTemplate
			if len(args) == 1 {
				t, err := c.GetTemplate(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]})
				if err != nil {
					return err
				}
				templates = append(templates, *t)
			} else {
				list, err := c.ListTemplates(cmd.Context(), ns, metav1.ListOptions{})
				if err != nil {
					return err
				}
				templates = list.Items
			}
			return RenderTemplates(o.streams.Out, templates)
		},
	}
}

// RenderTemplates prints one line per template and node: the node's
// golden machine, the template generation it was provisioned from (marked
// when the template has moved on), its phase, and its slots; then one line
// per retired golden (an earlier generation kept for its clones). A
// template no node has a golden of yet gets one line that says so.
func RenderTemplates(w io.Writer, templates []v1.BottleTemplate) error {
	if len(templates) == 0 {
		_, err := fmt.Fprintln(w, "No BottleTemplates found.")
		return err
	}
	// kubectl's table layout (cli-runtime's printers.GetNewTabWriter).
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	if _, err := fmt.Fprintln(tw, "TEMPLATE\tNODE\tGOLDEN\tGENERATION\tPHASE\tFREE\tHELD\tCLONES\tMESSAGE"); err != nil {
		return err
	}
	for _, t := range templates {
		nodes := slices.Clone(t.Status.Nodes)
		slices.SortFunc(nodes, func(a, b v1.TemplateNodeStatus) int { return cmp.Compare(a.NodeName, b.NodeName) })
		if len(nodes) == 0 {
			if _, err := fmt.Fprintf(tw, "%s\t-\t-\t-\tNoGolden\t0\t0\t0\tno node has a golden machine of this template yet\n", t.Name); err != nil {
				return err
			}
			continue
		}
		for _, n := range nodes {
			if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Name, n.NodeName, orDash(n.GoldenMachine),
				generationColumn(n.TemplateGeneration, t.Generation), orDash(string(n.Phase)), n.FreeSlots, n.HeldSlots, n.Clones,
				oneLine(n.Message)); err != nil {
				return err
			}
			for _, r := range n.RetiredGoldens {
				if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tRetired\t-\t-\t%d\tkept for its clones\n", t.Name, n.NodeName, r.MachineName,
					generationColumn(r.TemplateGeneration, t.Generation), r.Clones); err != nil {
					return err
				}
			}
		}
	}
	return tw.Flush()
}

// generationColumn is the golden's template generation, with the
// template's when they differ (a golden of an earlier spec).
func generationColumn(golden, template int64) string {
	if golden == 0 {
		return "-"
	}
	s := strconv.FormatInt(golden, 10)
	if template != 0 && golden != template {
		s += " (template: " + strconv.FormatInt(template, 10) + ")"
	}
	return s
}

// oneLine is the first non-empty line of s, with control characters
// replaced and cut to fit the table, as the results table's OUTPUT.
func oneLine(s string) string {
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			return lastLine(v1.ExecResult{Stdout: line})
		}
	}
	return "-"
}

func (c *bottleClient) GetTemplate(ctx context.Context, key types.NamespacedName) (*v1.BottleTemplate, error) {
	t := &v1.BottleTemplate{}
	err := c.rc.Get().Namespace(key.Namespace).Resource(v1.BottleTemplateResource).Name(key.Name).Do(ctx).Into(t)
	return t, err
}

func (c *bottleClient) ListTemplates(ctx context.Context, namespace string, opts metav1.ListOptions) (*v1.BottleTemplateList, error) {
	list := &v1.BottleTemplateList{}
	err := c.rc.Get().Namespace(namespace).Resource(v1.BottleTemplateResource).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(list)
	return list, err
}

// completeTemplateNames lists the namespace's BottleTemplates for shell
// completion of the first argument.
func (o *options) completeTemplateNames(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, ns, err := o.clientInNamespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := c.ListTemplates(cmd.Context(), ns, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, t := range list.Items {
		if strings.HasPrefix(t.Name, toComplete) {
			names = append(names, t.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
