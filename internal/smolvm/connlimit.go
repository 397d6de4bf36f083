package smolvm

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// smolvm's guest agent serves at most 8 connections at a time
// (MAX_CONCURRENT_CONNECTIONS, smolvm:crates/smolvm-agent/src/main.rs:1753-1756,
// 1812-1839); a ninth waits unserved, and a `machine status`/`ls` ping that
// waits 3 s marks the machine `unreachable` (src/agent/state_probe.rs:41-79).
// Every exec, session and copy holds one connection for as long as it runs,
// so the driver keeps its own below that limit, per machine, leaving room
// for smolvm's probes.
const (
	// DefaultMaxConnsPerMachine is how many execs, sessions and copies the
	// driver runs at once in one machine: 8 less two for the probes of a
	// concurrent status and ls.
	DefaultMaxConnsPerMachine = 6
	// interactiveReserve is how many of those an interactive session may
	// never take, so the controller's own steps and copies are not starved
	// by open sessions.
	interactiveReserve = 1
)

// connLimiter counts the driver's connections per machine.
type connLimiter struct {
	mu    sync.Mutex
	inUse map[string]int
	freed chan struct{} // closed and replaced whenever a slot frees
}

// errNoSlot: an interactive session found every slot it may take in use.
var errNoSlot = errors.New("no free connection")

// acquire takes one of machine's slots (within limit, or limit -
// interactiveReserve for an interactive session); release gives it back.
// A step or copy waits for a slot until ctx ends; an interactive session
// does not wait (errNoSlot): a person would see a session that hangs.
func (l *connLimiter) acquire(ctx context.Context, machine string, limit int, interactive bool) (release func(), err error) {
	if interactive {
		limit -= interactiveReserve
	}
	limit = max(limit, 1)
	for {
		l.mu.Lock()
		if l.inUse == nil {
			l.inUse = map[string]int{}
		}
		if l.freed == nil {
			l.freed = make(chan struct{})
		}
		if l.inUse[machine] < limit {
			l.inUse[machine]++
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { l.release(machine) }) }, nil
		}
		freed := l.freed
		l.mu.Unlock()
		if interactive {
			return nil, errNoSlot
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *connLimiter) release(machine string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inUse[machine]--; l.inUse[machine] <= 0 {
		delete(l.inUse, machine)
	}
	close(l.freed)
	l.freed = make(chan struct{})
}

// inUseBy reports how many slots machine holds (tests).
func (l *connLimiter) inUseBy(machine string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse[machine]
}

// connection takes one of machine's connection slots for a verb, or
// reports the caller's context ending first as that verb's error.
func (c *CLI) connection(ctx context.Context, verb, machine string, interactive bool) (func(), error) {
	limit := c.MaxConnsPerMachine
	if limit <= 0 {
		limit = DefaultMaxConnsPerMachine
	}
	release, err := c.conns.acquire(ctx, machine, limit, interactive)
	if errors.Is(err, errNoSlot) {
		return nil, &Error{Verb: verb, Class: ClassBusy, ExitCode: -1, Err: err,
			Message: fmt.Sprintf("machine %s already runs %d sessions and commands (smolvm's guest agent serves 8 connections at a time); "+
				"try again when one ends", machine, limit-interactiveReserve)}
	}
	if err != nil {
		class := ClassTimeout
		if err == context.Canceled {
			class = ClassCanceled
		}
		return nil, &Error{Verb: verb, Class: class, ExitCode: -1, Err: err,
			Message: "waited for one of the machine's connections (smolvm serves 8 at a time) until the context ended"}
	}
	return release, nil
}
