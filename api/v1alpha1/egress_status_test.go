package v1alpha1_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

var _ = Describe("status.egressRefusals validation", func() {
	refusal := func(op, dest string) v1.EgressRefusal {
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		return v1.EgressRefusal{Operation: op, Destination: dest, Count: 1, FirstSeen: now, LastSeen: now}
	}
	write := func(refusals ...v1.EgressRefusal) error {
		b := newBottle(nil)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		b.Status.EgressRefusals = refusals
		return k8sClient.Status().Update(ctx, b)
	}

	It("accepts one entry per operation and destination, at most 16", func() {
		var rs []v1.EgressRefusal
		for i := range v1.MaxEgressRefusals {
			rs = append(rs, refusal(v1.EgressConnect, fmt.Sprintf("10.0.0.%d:443", i)))
		}
		rs[1] = refusal(v1.EgressResolve, "10.0.0.0:443") // same destination, another operation
		Expect(write(rs...)).To(Succeed())
	})

	It("refuses a 17th entry, a duplicate, an unknown operation and an empty count", func() {
		var rs []v1.EgressRefusal
		for i := range v1.MaxEgressRefusals + 1 {
			rs = append(rs, refusal(v1.EgressConnect, fmt.Sprintf("10.0.0.%d:443", i)))
		}
		Expect(write(rs...)).To(MatchError(ContainSubstring("must have at most 16 items")))
		Expect(write(refusal(v1.EgressResolve, "pypi.org"), refusal(v1.EgressResolve, "pypi.org"))).
			To(MatchError(ContainSubstring("egressRefusals holds one entry per operation and destination")))
		Expect(write(refusal("bind", "10.0.0.1:22"))).To(MatchError(ContainSubstring(`supported values: "connect", "sendto", "resolve"`)))
		zero := refusal(v1.EgressResolve, "pypi.org")
		zero.Count = 0
		Expect(write(zero)).To(MatchError(ContainSubstring("should be greater than or equal to 1")))
	})
})
