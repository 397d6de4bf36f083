package smolvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every verb has a deadline: with the simulator hanging in that verb, the
// call returns an ClassTimeout *Error naming the verb soon after its deadline,
// and no smolvm process is left behind.
func TestEveryVerbHasADeadline(t *testing.T) {
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const limit = 300 * time.Millisecond
	short := Timeouts{Version: limit, Status: limit, List: limit, Stop: limit, Delete: limit,
		Create: limit, Start: limit, Copy: limit, CopyPerMiB: time.Millisecond}
	for _, tt := range []struct {
		hang, verb string
		call       func(ctx context.Context, c *CLI, name string) error
	}{
		{"version", verbVersion, func(ctx context.Context, c *CLI, _ string) error { _, err := c.Version(ctx); return err }},
		{"status", verbStatus, func(ctx context.Context, c *CLI, n string) error { _, err := c.Status(ctx, n); return err }},
		{"ls", verbList, func(ctx context.Context, c *CLI, _ string) error { _, err := c.List(ctx); return err }},
		{"stop", verbStop, func(ctx context.Context, c *CLI, n string) error { return c.Stop(ctx, n) }},
		{"delete", verbDelete, func(ctx context.Context, c *CLI, n string) error { return c.Delete(ctx, n) }},
		{"create", verbCreate, func(ctx context.Context, c *CLI, n string) error {
			return c.Create(ctx, MachineSpec{Name: n + "-new", Image: "i"})
		}},
		{"start", verbStart, func(ctx context.Context, c *CLI, n string) error { return c.Start(ctx, n) }},
		{"cp", verbCopyIn, func(ctx context.Context, c *CLI, n string) error {
			return c.CopyIn(ctx, n, src, "/tmp/file", 0o644, -1, -1)
		}},
	} {
		t.Run(tt.verb, func(t *testing.T) {
			name := "hang-" + strings.ReplaceAll(tt.verb, "_", "-")
			runningMachine(t, newSim(t), name)
			c := newSim(t, "SMOLVM_SIM_HANG="+tt.hang)
			c.Timeouts = short
			start := time.Now()
			err := tt.call(testContext(t), c, name)
			took := time.Since(start)
			var se *Error
			if !errors.As(err, &se) || !IsTimeout(err) || se.Verb != tt.verb {
				t.Fatalf("err = %v, want an ClassTimeout *Error for verb %q", err, tt.verb)
			}
			if !strings.Contains(err.Error(), "deadline of 30") {
				t.Fatalf("the error does not say which deadline: %v", err)
			}
			if took > limit+2*time.Second {
				t.Fatalf("returned %v after the call started (deadline %v)", took, limit)
			}
			waitNoProcesses(t, name, 2*time.Second)
		})
	}
}

// A caller's own cancellation is reported as ClassCanceled, not as the verb's
// deadline.
func TestCallerCancelIsNotADeadline(t *testing.T) {
	c := newSim(t, "SMOLVM_SIM_HANG=status")
	ctx, cancel := context.WithCancel(testContext(t))
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := c.Status(ctx, "whatever")
	if ClassOf(err) != ClassCanceled {
		t.Fatalf("err = %v, want ClassCanceled", err)
	}
}

func TestCopyDeadlineGrowsWithSize(t *testing.T) {
	d := DefaultTimeouts()
	if got := d.deadline(verbCopyIn, 0); got != d.Copy {
		t.Fatalf("empty file: %v", got)
	}
	if got := d.deadline(verbCopyIn, 100<<20+1); got != d.Copy+101*d.CopyPerMiB {
		t.Fatalf("100 MiB + 1 B: %v", got)
	}
	var zero Timeouts
	if got := zero.deadline(verbStatus, 0); got != d.Status {
		t.Fatalf("zero Timeouts must mean the defaults, got %v", got)
	}
}
