package smolvm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"testing"
)

// hostLauncher stands in for a launcher that runs smolvm elsewhere: it runs
// the request's argv itself and records every request.
type hostLauncher struct {
	reqs []LaunchRequest
	fail error
}

func (h *hostLauncher) Launch(ctx context.Context, req LaunchRequest) error {
	h.reqs = append(h.reqs, req)
	if h.fail != nil {
		return h.fail
	}
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(os.Environ(), req.Env...)
	return cmd.Run()
}

func TestStartThroughALauncher(t *testing.T) {
	c := newSim(t)
	ctx := testContext(t)
	h := &hostLauncher{}
	c.Launcher = h
	const name = "launched"
	if err := c.Create(ctx, MachineSpec{Name: name, Image: "node:22", CPUs: 2, MemoryMiB: 2048}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	want := LaunchRequest{Machine: name, State: StateCreated, Argv: []string{c.Path, "machine", "start", "--name", name},
		Env: c.Env, CPUs: 2, MemoryMiB: 2048, StartTimeout: DefaultTimeouts().Start}
	if len(h.reqs) != 1 || !reflect.DeepEqual(h.reqs[0], want) {
		t.Fatalf("launch requests %+v, want one %+v", h.reqs, want)
	}
	if m, err := c.Status(ctx, name); err != nil || m.State != StateRunning || m.PID == 0 {
		t.Fatalf("status after a launched start: %+v %v", m, err)
	}
	if err := c.Start(ctx, name); err != nil || len(h.reqs) != 1 {
		t.Fatalf("start of a running machine must succeed without a launch: %v, %d launches", err, len(h.reqs))
	}

	if err := c.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	h.fail = errors.New("systemd launcher: start job of unit bottle-vm-launched.service: failed")
	err := c.Start(ctx, name)
	var e *Error
	if !errors.As(err, &e) || e.Verb != verbStart || e.Class != ClassOther {
		t.Fatalf("launcher failure: %v, want a start Error", err)
	}
	if err := c.Start(ctx, "-bad"); ClassOf(err) != ClassInvalidName || len(h.reqs) != 2 {
		t.Fatalf("bad name: %v after %d launches", err, len(h.reqs))
	}
	if err := c.Start(ctx, "missing"); !IsNotFound(err) || len(h.reqs) != 2 {
		t.Fatalf("missing machine: %v after %d launches", err, len(h.reqs))
	}
}
