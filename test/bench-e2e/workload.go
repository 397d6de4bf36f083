package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// The workload every figure is measured on: a Bottle with one file and two steps,
// and the same work done by hand with the smolvm calls the controller
// makes (internal/smolvm, the agent's own driver): create, start, cp, and
// one exec per step.
const (
	benchNamespace = "default"
	benchImage     = "node:22-bookworm"
	benchUser      = "node"
	benchFilePath  = "/home/node/bench.txt"
	benchFileBody  = "a file the benchmark copies in\n"
	// nodeUID and nodeGID own the file by hand, as the image's node user.
	nodeUID, nodeGID = 1000, 1000
	benchFileMode    = 0o644
)

var benchSteps = []v1.ProvisionStep{
	{Name: "one", Script: "echo one"},
	{Name: "two", Script: "echo two"},
}

func benchBottle(name, node string) *v1.Bottle {
	mode := int32(benchFileMode)
	body := benchFileBody
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: v1.BottleSpec{
			NodeName: node,
			MachineSpec: v1.MachineSpec{
				Image:     benchImage,
				ExecUser:  benchUser,
				Files:     []v1.File{{Path: benchFilePath, Owner: benchUser, Mode: &mode, Inline: &body}},
				Provision: benchSteps,
			},
		},
	}
}

// bottleTimes are when the benchmark saw a Bottle reach its milestones.
type bottleTimes struct {
	created, scheduled, ready time.Time
	machine                   string
}

// watcher timestamps Bottles as the watch reports them: Scheduled (the
// cluster controller placed its reservation) and Ready at the current
// generation.
type watcher struct {
	mu     sync.Mutex
	times  map[string]*bottleTimes
	change chan struct{}
	stop   func()
}

func watchBottles(ctx context.Context, c client.WithWatch) (*watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := c.Watch(ctx, &v1.BottleList{}, client.InNamespace(benchNamespace))
	if err != nil {
		cancel()
		return nil, err
	}
	wt := &watcher{times: map[string]*bottleTimes{}, change: make(chan struct{}, 1), stop: cancel}
	go func() {
		for {
			for ev := range w.ResultChan() {
				now := time.Now()
				b, ok := ev.Object.(*v1.Bottle)
				if !ok || ev.Type == watch.Deleted {
					continue
				}
				wt.observe(b, now)
			}
			w.Stop()
			// The API server may end a watch at any time: list what
			// changed meanwhile (seen late, as of now) and watch again.
			if w = wt.rewatch(ctx, c); w == nil {
				return
			}
		}
	}()
	return wt, nil
}

// rewatch lists the Bottles and watches from that list on, until it works
// or ctx ends (nil).
func (wt *watcher) rewatch(ctx context.Context, c client.WithWatch) watch.Interface {
	for ctx.Err() == nil {
		var list v1.BottleList
		if err := c.List(ctx, &list, client.InNamespace(benchNamespace)); err == nil {
			now := time.Now()
			for i := range list.Items {
				wt.observe(&list.Items[i], now)
			}
			w, err := c.Watch(ctx, &v1.BottleList{}, client.InNamespace(benchNamespace),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
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

func (w *watcher) observe(b *v1.Bottle, now time.Time) {
	w.mu.Lock()
	t := w.times[b.Name]
	if t == nil {
		t = &bottleTimes{}
		w.times[b.Name] = t
	}
	if t.scheduled.IsZero() && apimeta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionScheduled) {
		t.scheduled = now
	}
	if t.ready.IsZero() && b.Status.Phase == v1.PhaseReady && b.Status.ObservedGeneration == b.Generation {
		t.ready = now
		t.machine = b.Status.MachineName
	}
	w.mu.Unlock()
	select {
	case w.change <- struct{}{}:
	default:
	}
}

// created records when the benchmark asked for a Bottle.
func (w *watcher) created(name string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.times[name]
	if t == nil {
		t = &bottleTimes{}
		w.times[name] = t
	}
	t.created = at
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

// byHand does one Bottle's work the way a person would with the smolvm
// CLI: the controller's own calls (same argv), one after the other, with
// nothing around them. cli's log is separate from the agent's.
type byHand struct {
	cli      *smolvm.CLI
	hostFile string
}

func newByHand(d *devEnv, workDir, log string) (*byHand, error) {
	hostFile := filepath.Join(workDir, "bench.txt")
	if err := os.WriteFile(hostFile, []byte(benchFileBody), 0o644); err != nil {
		return nil, err
	}
	cli := smolvm.New(d.smolvm(), "SMOLVM_DATA_DIR="+d.dataDir(), "SMOLVM_SIM_LATENCY="+d.latency, "SMOLVM_SIM_LOG="+log)
	return &byHand{cli: cli, hostFile: hostFile}, nil
}

// run makes machine name Ready by hand.
func (h *byHand) run(ctx context.Context, name string) error {
	// The controller's MachineSpec (controllers/agent/bottle_machine.go) for the
	// defaulted spec: 2 CPUs, 4096 MiB, no network, its four labels.
	spec := smolvm.MachineSpec{
		Name: name, Image: benchImage, CPUs: 2, MemoryMiB: 4096,
		Labels: map[string]string{
			v1.LabelUID: "by-hand-" + name, v1.LabelNamespace: benchNamespace,
			v1.LabelName: name, v1.LabelNetwork: "none",
		},
	}
	if err := h.cli.Create(ctx, spec); err != nil {
		return err
	}
	if err := h.cli.Start(ctx, name); err != nil {
		return err
	}
	if err := h.cli.CopyIn(ctx, name, h.hostFile, benchFilePath, benchFileMode, nodeUID, nodeGID); err != nil {
		return err
	}
	for _, step := range benchSteps {
		res, err := h.cli.Exec(ctx, smolvm.ExecRequest{
			Machine: name, User: benchUser, Script: step.Script, Mode: smolvm.ModeLogin,
			Timeout: time.Duration(600) * time.Second,
		})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("step %s by hand: exit %d: %s", step.Name, res.ExitCode, res.Stderr)
		}
	}
	return nil
}

// remove deletes machines made by hand (not measured).
func (h *byHand) remove(ctx context.Context, names []string) {
	for _, n := range names {
		_ = h.cli.Delete(ctx, n)
	}
}
