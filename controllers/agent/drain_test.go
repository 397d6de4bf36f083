package agent

import (
	"context"
	"testing"
	"time"
)

func TestDrainContext(t *testing.T) {
	done := func(t *testing.T, ctx context.Context, what string) {
		t.Helper()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the drain did not end", what)
		}
	}
	t.Run("no grace is the pass's own context", func(t *testing.T) {
		ctx := t.Context()
		if d, _ := drainContext(ctx, 0, nil); d != ctx {
			t.Fatal("a pass without grace got another context")
		}
	})
	t.Run("outlives the stop by grace", func(t *testing.T) {
		parent, stop := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "kept"))
		d, cancel := drainContext(parent, 50*time.Millisecond, nil)
		defer cancel()
		if d.Value(ctxKey{}) != "kept" {
			t.Error("the drain lost the pass's values (its logger)")
		}
		stop()
		if d.Err() != nil {
			t.Fatal("the drain ended with the stop, not after its grace")
		}
		done(t, d, "grace over")
	})
	t.Run("a deposed agent drains nothing", func(t *testing.T) {
		parent, stop := context.WithCancel(t.Context())
		deposed := make(chan struct{})
		d, cancel := drainContext(parent, time.Hour, deposed)
		defer cancel()
		close(deposed)
		stop()
		done(t, d, "deposed")
	})
	t.Run("the pass ending ends it", func(t *testing.T) {
		d, cancel := drainContext(t.Context(), time.Hour, nil)
		cancel()
		done(t, d, "pass over")
	})
}

type ctxKey struct{}
