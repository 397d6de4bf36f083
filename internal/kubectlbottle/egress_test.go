package kubectlbottle

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestEgressThroughMain(t *testing.T) {
	needEnv(t)
	b := newBottle(t, "egress-me", v1.PhaseReady)
	if code, out, errOut := run("egress", "egress-me"); code != 0 || out != "No egress refusals recorded for bottle egress-me.\n" {
		t.Fatalf("no refusals: exit %d, %q, stderr %q", code, out, errOut)
	}

	b.Spec.Network = v1.Network{AllowHosts: []string{"api.anthropic.com"}}
	if err := envClient.Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	at := func(s int) metav1.Time { return metav1.NewTime(time.Date(2026, 8, 13, 2, 31, s, 0, time.UTC)) }
	b.Status.EgressRefusals = []v1.EgressRefusal{
		{Operation: "resolve", Destination: "pypi.org", Count: 12, FirstSeen: at(1), LastSeen: at(9)},
		{Operation: "connect", Destination: "10.1.2.3:443", Count: 2, FirstSeen: at(2), LastSeen: at(8)},
		{Operation: "resolve", Destination: "x';touch /tmp/pwned;'", Count: 1, FirstSeen: at(3), LastSeen: at(7)},
	}
	b.Status.ObservedGeneration = b.Generation
	if err := envClient.Status().Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	before := b.Spec.Network
	code, out, errOut := run("egress", "egress-me")
	want := `OPERATION  DESTINATION            COUNT  FIRST SEEN            LAST SEEN
resolve    pypi.org               12     2026-08-13T02:31:01Z  2026-08-13T02:31:09Z
connect    10.1.2.3:443           2      2026-08-13T02:31:02Z  2026-08-13T02:31:08Z
resolve    x';touch /tmp/pwned;'  1      2026-08-13T02:31:03Z  2026-08-13T02:31:07Z

To allow them, review and run (not applied by this command):
  kubectl patch bottle egress-me -n ` + testNamespace + ` --type merge -p '{"spec":{"network":{"allowCIDRs":["10.1.2.3/32"],"allowHosts":["api.anthropic.com","pypi.org"]}}}'
Left out (not a valid host name or address): x';touch /tmp/pwned;'
`
	if code != 0 || out != want {
		t.Fatalf("egress: exit %d, stderr %q\n got %s\nwant %s", code, errOut, out, want)
	}
	var now v1.Bottle
	if err := envClient.Get(context.Background(), client.ObjectKeyFromObject(b), &now); err != nil {
		t.Fatal(err)
	}
	if after := now.Spec.Network; strings.Join(after.AllowHosts, ",") != strings.Join(before.AllowHosts, ",") || len(after.AllowCIDRs) != 0 {
		t.Fatalf("egress changed spec.network: %+v", after)
	}
	if code, _, errOut := run("egress", "missing"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("missing bottle: exit %d, stderr %q", code, errOut)
	}
}
