package placement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestRetentionDue(t *testing.T) {
	created := time.Unix(1000, 0)
	stopped := metav1.NewTime(time.Unix(5000, 0))
	d := func(s string) *metav1.Duration { x, _ := time.ParseDuration(s); return &metav1.Duration{Duration: x} }
	b := func(lc *v1.Lifecycle, idle *metav1.Time) *v1.Bottle {
		x := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
		x.Spec.Lifecycle = lc
		if idle != nil {
			x.Status.Lifecycle = &v1.LifecycleStatus{IdleStoppedAt: idle}
		}
		return x
	}
	cases := []struct {
		name string
		b    *v1.Bottle
		want time.Time
		ok   bool
	}{
		{"no lifecycle", b(nil, nil), time.Time{}, false},
		{"no deleteAfter", b(&v1.Lifecycle{StopAfterIdle: d("1m")}, &stopped), time.Time{}, false},
		{"after creation without stopAfterIdle", b(&v1.Lifecycle{DeleteAfter: d("1h")}, nil), created.Add(time.Hour), true},
		{"after the idle stop", b(&v1.Lifecycle{StopAfterIdle: d("1m"), DeleteAfter: d("1h")}, &stopped), stopped.Add(time.Hour), true},
		{"not idle-stopped: kept", b(&v1.Lifecycle{StopAfterIdle: d("1m"), DeleteAfter: d("1h")}, nil), time.Time{}, false},
	}
	for _, c := range cases {
		got, ok := RetentionDue(c.b)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("%s: RetentionDue = %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
