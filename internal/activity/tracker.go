// Package activity is the node agent's record of what uses each Bottle's
// machine (sessions, provisioning steps, BottleRuns), for
// spec.lifecycle.stopAfterIdle, and the wake-up requests of sessions and
// runs that find a Bottle stopped for idleness. It lives in the agent
// process, which sees every session and step of its node's Bottles: after
// an agent restart, a Bottle's idle time counts from the restart.
package activity

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Tracker is safe for concurrent use. The zero value is not usable: New.
type Tracker struct {
	mu     sync.Mutex
	last   map[types.UID]time.Time
	active map[types.UID]int
	wakes  map[types.UID]time.Time
	// woken receives the Bottle to reconcile at once after a wake request.
	woken chan types.NamespacedName
	now   func() time.Time
}

// New returns an empty tracker.
func New() *Tracker {
	return &Tracker{
		last: map[types.UID]time.Time{}, active: map[types.UID]int{}, wakes: map[types.UID]time.Time{},
		woken: make(chan types.NamespacedName, 64), now: time.Now,
	}
}

// Begin records a use of the Bottle's machine starting; the returned func
// records its end. A Bottle in use is never idle.
func (t *Tracker) Begin(uid types.UID) (end func()) {
	t.mu.Lock()
	t.active[uid]++
	t.last[uid] = t.now()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.active[uid]--; t.active[uid] <= 0 {
				delete(t.active, uid)
			}
			t.last[uid] = t.now()
		})
	}
}

// Idle says whether the Bottle is unused now and since when: the end of its
// last use, or since (the Bottle Ready, the agent started) if later.
func (t *Tracker) Idle(uid types.UID, since time.Time) (idle bool, from time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	from = since
	if l, ok := t.last[uid]; ok && l.After(from) {
		from = l
	}
	return t.active[uid] == 0, from
}

// Wake asks for the Bottle's machine to be started again (it was stopped
// for idleness): the agent's Bottle reconciler reads WakeRequested.
func (t *Tracker) Wake(key types.NamespacedName, uid types.UID) {
	t.mu.Lock()
	t.wakes[uid] = t.now()
	t.last[uid] = t.now()
	t.mu.Unlock()
	select {
	case t.woken <- key:
	default: // the reconciler's resync picks it up
	}
}

// WakeRequested says whether a wake was asked for after stoppedAt.
func (t *Tracker) WakeRequested(uid types.UID, stoppedAt time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.wakes[uid]
	return ok && !w.Before(stoppedAt)
}

// Woken is the channel of Bottles to reconcile after a wake request.
func (t *Tracker) Woken() <-chan types.NamespacedName { return t.woken }

// Forget drops a deleted Bottle.
func (t *Tracker) Forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, uid)
	delete(t.active, uid)
	delete(t.wakes, uid)
}
