package agent

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

func TestWakesTemplate(t *testing.T) {
	kept := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "ns", UID: "u1"}}
	kept.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "n1", GoldenMachine: GoldenMachineName(kept)}}
	elsewhere := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "ns", UID: "u2"}}
	elsewhere.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "n2", GoldenMachine: GoldenMachineName(elsewhere)}}
	old := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", UID: "u3"}}
	old.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "n1", GoldenMachine: "an-earlier-golden"}}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(kept, elsewhere, old).Build()
	r := &TemplateReconciler{Client: c, NodeName: "n1"}
	p := r.wakesTemplate()

	bottle := func(template string) *v1.Bottle {
		b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}}
		if template != "" {
			b.Spec.TemplateRef = &v1.TemplateReference{Name: template}
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    *v1.Bottle
		want bool
	}{
		{"a plain Bottle", bottle(""), false},
		{"the node keeps the template's golden", bottle("kept"), false},
		{"another node keeps it, this one not yet (OnDemand)", bottle("elsewhere"), true},
		{"the node keeps an earlier golden only", bottle("old"), true},
		{"the template is not there (yet)", bottle("missing"), true},
	} {
		if got := p.Create(event.CreateEvent{Object: tc.b}); got != tc.want {
			t.Errorf("create, %s: %v, want %v", tc.name, got, tc.want)
		}
	}

	before := bottle("kept")
	for _, tc := range []struct {
		name   string
		change func(b *v1.Bottle)
		want   bool
	}{
		{"its finalizer", func(b *v1.Bottle) { b.Finalizers = []string{v1.Finalizer} }, false},
		{"Scheduled", func(b *v1.Bottle) {
			b.Status.Conditions = []metav1.Condition{{Type: v1.ConditionScheduled, Status: metav1.ConditionTrue}}
		}, false},
		{"Ready", func(b *v1.Bottle) { b.Status.Phase = v1.PhaseReady }, false},
		{"it took a slot", func(b *v1.Bottle) {
			b.Status.MachineName = "g-s0"
			b.Status.Template = &v1.TemplateOrigin{Name: "kept", HeldSlot: true}
		}, true},
		{"it is going", func(b *v1.Bottle) { now := metav1.Now(); b.DeletionTimestamp = &now }, true},
	} {
		after := before.DeepCopy()
		tc.change(after)
		if got := p.Update(event.UpdateEvent{ObjectOld: before, ObjectNew: after}); got != tc.want {
			t.Errorf("update, %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !p.Delete(event.DeleteEvent{Object: before}) {
		t.Error("a deleted Bottle must wake its template")
	}
}

func TestPassListingListsOncePerChange(t *testing.T) {
	calls := 0
	ls := newPassListing(func(context.Context) ([]smolvm.Machine, error) {
		calls++
		return []smolvm.Machine{{Name: "m"}}, nil
	})
	ctx := context.Background()
	for range 3 {
		if _, err := ls.get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("three questions listed %d times, want 1", calls)
	}
	ls.changed()
	if _, err := ls.get(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("a question after a change listed %d times in all, want 2", calls)
	}
}
