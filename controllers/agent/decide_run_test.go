package agent

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestDecideRun(t *testing.T) {
	ready := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: v1.BottleStatus{Phase: v1.PhaseReady}}
	starting := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: v1.BottleStatus{Phase: v1.PhaseStarting}}
	stopped := ready.DeepCopy()
	stopped.Spec.RunState = v1.RunStateStopped
	now := metav1.NowMicro()
	run := func(policy v1.ConcurrencyPolicy, started, finished bool) *v1.BottleRun {
		r := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: v1.BottleRunSpec{ConcurrencyPolicy: policy}}
		if started {
			r.Status.StartedAt, r.Status.Phase = &now, v1.RunPhaseRunning
		}
		if finished {
			r.Status.FinishedAt, r.Status.Phase = &now, v1.RunPhaseSucceeded
		}
		return r
	}
	cases := []struct {
		name   string
		run    *v1.BottleRun
		b      *v1.Bottle
		active string
		mine   bool
		queue  []string
		want   runAction
		says   string
	}{
		{"finished", run(v1.ConcurrencyQueue, true, true), ready, "", false, nil, runFinished, ""},
		{"started by an agent no longer running it", run(v1.ConcurrencyQueue, true, false), ready, "", false, nil, runLost, "never started again"},
		{"started and running here", run(v1.ConcurrencyQueue, true, false), ready, "r", true, nil, runWait, "running"},
		{"Bottle not Ready", run(v1.ConcurrencyQueue, false, false), starting, "", false, []string{"r"}, runWait, "to be Ready (phase Starting)"},
		{"Bottle stopped", run(v1.ConcurrencyQueue, false, false), stopped, "", false, []string{"r"}, runWait, "runState Stopped"},
		{"another run active, Queue", run(v1.ConcurrencyQueue, false, false), ready, "x", false, []string{"r"}, runWait, `queued behind run "x"`},
		{"another run active, Forbid", run(v1.ConcurrencyForbid, false, false), ready, "x", false, nil, runForbidden, "Forbid"},
		{"an older run queued ahead", run(v1.ConcurrencyQueue, false, false), ready, "", false, []string{"o", "r"}, runWait, `queued behind run "o"`},
		{"Forbid does not wait for the queue", run(v1.ConcurrencyForbid, false, false), ready, "", false, []string{"o"}, runStart, ""},
		{"first in line", run(v1.ConcurrencyQueue, false, false), ready, "", false, []string{"r", "z"}, runStart, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decideRun(c.run, c.b, c.active, c.mine, c.queue)
			if got.Action != c.want || !strings.Contains(got.Why, c.says) {
				t.Fatalf("decideRun = %+v, want action %v saying %q", got, c.want, c.says)
			}
		})
	}
}

func TestRunQueueOrder(t *testing.T) {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Unix(int64(s), 0)) }
	now := metav1.NowMicro()
	runs := []v1.BottleRun{
		{ObjectMeta: metav1.ObjectMeta{Name: "c", CreationTimestamp: at(2)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: at(1)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "a", CreationTimestamp: at(2)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "started", CreationTimestamp: at(0)}, Status: v1.BottleRunStatus{StartedAt: &now}},
		{ObjectMeta: metav1.ObjectMeta{Name: "forbid", CreationTimestamp: at(0)}, Spec: v1.BottleRunSpec{ConcurrencyPolicy: v1.ConcurrencyForbid}},
	}
	if got := strings.Join(runQueue(runs), ","); got != "b,a,c" {
		t.Fatalf("runQueue = %s, want b,a,c", got)
	}
}

func TestRunEnvRunWins(t *testing.T) {
	v := func(s string) *string { return &s }
	got := runEnv([]v1.EnvVar{{Name: "A", Value: v("bottle")}, {Name: "B", Value: v("b")}}, []v1.EnvVar{{Name: "C", Value: v("c")}, {Name: "A", Value: v("run")}})
	var s []string
	for _, e := range got {
		s = append(s, e.Name+"="+*e.Value)
	}
	if strings.Join(s, " ") != "A=run B=b C=c" {
		t.Fatalf("runEnv = %v", s)
	}
}

func TestTTLLeft(t *testing.T) {
	fin := metav1.NewMicroTime(time.Unix(100, 0))
	ttl := int32(10)
	r := &v1.BottleRun{Spec: v1.BottleRunSpec{TTLSecondsAfterFinished: &ttl}, Status: v1.BottleRunStatus{FinishedAt: &fin}}
	if left, ok := ttlLeft(r, time.Unix(104, 0)); !ok || left != 6*time.Second {
		t.Fatalf("ttlLeft = %v %v", left, ok)
	}
	if left, ok := ttlLeft(r, time.Unix(200, 0)); !ok || left != 0 {
		t.Fatalf("ttlLeft past = %v %v", left, ok)
	}
	r.Spec.TTLSecondsAfterFinished = nil
	if _, ok := ttlLeft(r, time.Unix(200, 0)); ok {
		t.Fatal("no TTL must keep the run")
	}
}
