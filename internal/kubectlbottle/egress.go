package kubectlbottle

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newEgressCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "egress NAME",
		Short: "List what the Bottle's egress allowlist refused, and the spec.network patch that would allow it",
		Long: `Lists the destinations the Bottle's egress allowlist refused (status.egressRefusals: the
most recently refused 16, read from smolvm by the node's agent once per resync period), then
prints the merge patch of spec.network that would allow them, for a person to review. The
patch is never applied: run it yourself if every destination in it should be reachable.
Changing spec.network recreates the machine (recreatePolicy: OnChange) or stalls the Bottle
(Never). A refused name that is not a valid host name is listed but left out of the patch.`,
		Example:           `  kubectl bottle egress my-bottle`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientInNamespace()
			if err != nil {
				return err
			}
			b, err := c.Get(cmd.Context(), types.NamespacedName{Namespace: ns, Name: args[0]})
			if err != nil {
				return err
			}
			return printEgress(o.streams.Out, b)
		},
	}
}

// hostName is the CRD's rule for spec.network.allowHosts entries: only such
// a name goes into the patch, so a name a guest made up cannot put anything
// else in a command line a person copies.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`)

// printEgress writes the refusals table and the patch that would allow them.
func printEgress(w io.Writer, b *v1.Bottle) error {
	refusals := b.Status.EgressRefusals
	if len(refusals) == 0 {
		_, err := fmt.Fprintf(w, "No egress refusals recorded for bottle %s.\n", b.Name)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "OPERATION\tDESTINATION\tCOUNT\tFIRST SEEN\tLAST SEEN")
	for _, r := range refusals {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Operation, strings.Map(printable, r.Destination), r.Count,
			r.FirstSeen.UTC().Format(time.RFC3339), r.LastSeen.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	patch, skipped := AllowPatch(b)
	if patch == nil {
		_, err := fmt.Fprintln(w, "\nNo patch: no refused destination is a valid host name or address.")
		return err
	}
	_, _ = fmt.Fprintf(w, "\nTo allow them, review and run (not applied by this command):\n  kubectl patch bottle %s -n %s --type merge -p '%s'\n", b.Name, b.Namespace, patch)
	for _, s := range skipped {
		_, _ = fmt.Fprintf(w, "Left out (not a valid host name or address): %s\n", strings.Map(printable, s))
	}
	return nil
}

// printable keeps a guest-chosen destination from writing control
// characters to a terminal.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return '?'
	}
	return r
}

// AllowPatch is the merge patch of spec.network that allows every refused
// destination besides what is allowed already: refused names into
// allowHosts, refused addresses into allowCIDRs as single-address CIDRs.
// skipped are the destinations that can be neither. nil when nothing can
// be added.
func AllowPatch(b *v1.Bottle) (patch []byte, skipped []string) {
	hosts := slices.Clone(b.Spec.Network.AllowHosts)
	cidrs := slices.Clone(b.Spec.Network.AllowCIDRs)
	added := false
	for _, r := range b.Status.EgressRefusals {
		switch r.Operation {
		case v1.EgressResolve:
			name := strings.ToLower(strings.TrimSuffix(r.Destination, "."))
			if len(name) > 253 || !hostName.MatchString(name) {
				skipped = append(skipped, r.Destination)
				continue
			}
			if !slices.Contains(hosts, name) {
				hosts, added = append(hosts, name), true
			}
		default:
			ap, err := netip.ParseAddrPort(r.Destination)
			if err != nil {
				skipped = append(skipped, r.Destination)
				continue
			}
			cidr := netip.PrefixFrom(ap.Addr().Unmap(), ap.Addr().Unmap().BitLen()).String()
			if !slices.Contains(cidrs, cidr) {
				cidrs, added = append(cidrs, cidr), true
			}
		}
	}
	if !added {
		return nil, skipped
	}
	network := map[string]any{}
	if len(hosts) > 0 {
		network["allowHosts"] = hosts
	}
	if len(cidrs) > 0 {
		network["allowCIDRs"] = cidrs
	}
	patch, _ = json.Marshal(map[string]any{"spec": map[string]any{"network": network}})
	return patch, skipped
}
