package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// bottleTimes are when the benchmark saw a Bottle reach its milestones.
type bottleTimes struct {
	created, scheduled, ready time.Time
	// seen is the watch's first sight of it (its create, stored).
	seen time.Time
	// podCreated and podBound are its reservation Pod's create and
	// binding; finalized the agent's finalizer, claimed the status write
	// that names its machine before it is Ready (a templated Bottle's
	// claim). Each is zero when the watch never showed it.
	podCreated, podBound, finalized, claimed time.Time
	machine                                  string
}

// watcher timestamps Bottles and their reservation Pods as the watches
// report them: Scheduled (the cluster controller placed its reservation)
// and Ready at the current generation, and the steps between.
type watcher struct {
	mu     sync.Mutex
	times  map[string]*bottleTimes
	change chan struct{}
	stop   func()
}

func watchBottles(ctx context.Context, c client.WithWatch) (*watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	wt := &watcher{times: map[string]*bottleTimes{}, change: make(chan struct{}, 1), stop: cancel}
	bottles := func() client.ObjectList { return &v1.BottleList{} }
	pods := func() client.ObjectList { return &corev1.PodList{} }
	reservations := client.HasLabels{v1.LabelReservation}
	for _, w := range []struct {
		list    func() client.ObjectList
		observe func(runtime.Object, time.Time)
		opts    []client.ListOption
	}{
		{bottles, wt.observeBottle, []client.ListOption{client.InNamespace(benchNamespace)}},
		{pods, wt.observePod, []client.ListOption{client.InNamespace(benchNamespace), reservations}},
	} {
		first, err := c.Watch(ctx, w.list(), w.opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		go wt.follow(ctx, c, first, w.list, w.observe, w.opts)
	}
	return wt, nil
}

// follow feeds a watch's objects to observe and, when the API server ends
// the watch (it may at any time), lists what changed meanwhile (seen late,
// as of now) and watches again from that list.
func (wt *watcher) follow(ctx context.Context, c client.WithWatch, w watch.Interface, list func() client.ObjectList, observe func(runtime.Object, time.Time), opts []client.ListOption) {
	for {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Deleted {
				observe(ev.Object, time.Now())
			}
		}
		w.Stop()
		if w = wt.rewatch(ctx, c, list, observe, opts); w == nil {
			return
		}
	}
}

// rewatch lists and watches from that list on, until it works or ctx ends
// (nil).
func (wt *watcher) rewatch(ctx context.Context, c client.WithWatch, list func() client.ObjectList, observe func(runtime.Object, time.Time), opts []client.ListOption) watch.Interface {
	for ctx.Err() == nil {
		l := list()
		if err := c.List(ctx, l, opts...); err == nil {
			now := time.Now()
			items, err := apimeta.ExtractList(l)
			if err != nil {
				panic(err) // a typed list always has items
			}
			for _, o := range items {
				observe(o, now)
			}
			w, err := c.Watch(ctx, list(), append(opts[:len(opts):len(opts)],
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.GetResourceVersion()}})...)
			if err == nil {
				return w
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// at returns name's times, made on first use; the caller holds mu.
func (wt *watcher) at(name string) *bottleTimes {
	t := wt.times[name]
	if t == nil {
		t = &bottleTimes{}
		wt.times[name] = t
	}
	return t
}

// first sets *t to now unless it is set already.
func first(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
}

func (wt *watcher) observeBottle(o runtime.Object, now time.Time) {
	b, ok := o.(*v1.Bottle)
	if !ok {
		return
	}
	wt.mu.Lock()
	t := wt.at(b.Name)
	first(&t.seen, now)
	if len(b.Finalizers) > 0 {
		first(&t.finalized, now)
	}
	if apimeta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionScheduled) {
		first(&t.scheduled, now)
	}
	if b.Status.MachineName != "" {
		first(&t.claimed, now)
	}
	if t.ready.IsZero() && b.Status.Phase == v1.PhaseReady && b.Status.ObservedGeneration == b.Generation {
		t.ready = now
		t.machine = b.Status.MachineName
	}
	wt.mu.Unlock()
	wt.changed()
}

// observePod times a reservation Pod's create and binding for the Bottle
// that owns it.
func (wt *watcher) observePod(o runtime.Object, now time.Time) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	owner := metav1.GetControllerOf(p)
	if owner == nil || owner.Kind != "Bottle" {
		return
	}
	wt.mu.Lock()
	t := wt.at(owner.Name)
	first(&t.podCreated, now)
	if p.Spec.NodeName != "" {
		first(&t.podBound, now)
	}
	wt.mu.Unlock()
}

func (wt *watcher) changed() {
	select {
	case wt.change <- struct{}{}:
	default:
	}
}

// created records when the benchmark asked for a Bottle.
func (wt *watcher) created(name string, at time.Time) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.at(name).created = at
}

// waitReady waits until every Bottle of names is Ready, and returns their
// times.
func (w *watcher) waitReady(ctx context.Context, c client.Client, names []string, timeout time.Duration) (map[string]bottleTimes, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		out := make(map[string]bottleTimes, len(names))
		for _, n := range names {
			if t := w.times[n]; t != nil && !t.ready.IsZero() {
				out[n] = *t
			}
		}
		w.mu.Unlock()
		if len(out) == len(names) {
			return out, nil
		}
		select {
		case <-w.change:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, notReady(ctx, c, names, out, timeout)
		}
	}
}

// notReady says which Bottles did not become Ready, and where they are.
func notReady(ctx context.Context, c client.Client, names []string, ready map[string]bottleTimes, timeout time.Duration) error {
	for _, n := range names {
		if _, ok := ready[n]; ok {
			continue
		}
		b := &v1.Bottle{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: n}, b); err != nil {
			return fmt.Errorf("bottle %s not Ready after %s: %w", n, timeout, err)
		}
		msg := ""
		if cond := apimeta.FindStatusCondition(b.Status.Conditions, v1.ConditionReady); cond != nil {
			msg = cond.Reason + ": " + cond.Message
		}
		return fmt.Errorf("%d of %d Bottles not Ready after %s; %s is %s (%s)", len(names)-len(ready), len(names), timeout, n, b.Status.Phase, msg)
	}
	return nil
}
