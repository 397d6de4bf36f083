package agent

import (
	"sync"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// DefaultUnreachableGrace is how long a machine may stay `unreachable`
// before the agent restarts it. smolvm reports `unreachable` when its 3 s
// ping of the guest agent goes unanswered (smolvm:src/agent/state_probe.rs:
// 41-79), which also happens to a healthy guest whose agent is busy with
// its 8 connections (crates/smolvm-agent/src/main.rs:1753-1756): a restart
// would kill every session and the running step for a moment's congestion.
const DefaultUnreachableGrace = 30 * time.Second

// unreachableClock remembers since when each machine has been seen
// unreachable without a break, so a restart waits out a transient one.
type unreachableClock struct {
	now   func() time.Time
	mu    sync.Mutex
	since map[string]time.Time
}

func newUnreachableClock() *unreachableClock {
	return &unreachableClock{now: time.Now, since: map[string]time.Time{}}
}

// observe records a machine's state and returns how long it has been
// unreachable (0 when it is not).
func (c *unreachableClock) observe(machine, state string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if state != smolvm.StateUnreachable {
		delete(c.since, machine)
		return 0
	}
	now := c.now()
	first, ok := c.since[machine]
	if !ok {
		c.since[machine] = now
		return 0
	}
	return now.Sub(first)
}
