package agentlease

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	const me, other = "agent-a", "agent-b"
	d := 15 * time.Second
	cases := []struct {
		name string
		held bool
		obs  observation
		want leaseAction
	}{
		{"holder, API unreachable: keep what runs, decide nothing", true, observation{ReadFailed: true}, leaseWait},
		{"standby, API unreachable: an outage is no death", false, observation{ReadFailed: true}, leaseWait},
		{"no Lease yet", false, observation{Missing: true}, leaseAcquire},
		{"released Lease", false, observation{Holder: "", Duration: d}, leaseAcquire},
		{"holder renews", true, observation{Holder: me, Duration: d}, leaseRenew},
		{"holder renews after a long outage", true, observation{Holder: me, Duration: d, Unchanged: time.Hour}, leaseRenew},
		{"restarted container resumes its own Lease", false, observation{Holder: me, Duration: d}, leaseRenew},
		{"holder reads another holder: give way", true, observation{Holder: other, Duration: d}, leaseYield},
		{"standby, holder alive", false, observation{Holder: other, Duration: d, Unchanged: d - time.Millisecond}, leaseWait},
		{"standby, holder silent for the whole duration", false, observation{Holder: other, Duration: d, Unchanged: d}, leaseAcquire},
	}
	for _, c := range cases {
		if got := decide(me, c.held, c.obs); got != c.want {
			t.Errorf("%s: decide = %d, want %d", c.name, got, c.want)
		}
	}
}
