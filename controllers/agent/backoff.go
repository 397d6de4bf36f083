package agent

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Defaults of the per-Bottle backoff after a smolvm failure.
const (
	DefaultSmolvmRetryBase = time.Second
	DefaultSmolvmRetryMax  = 5 * time.Minute
)

// backoffs holds, per Bottle, how many passes in a row ended in a smolvm
// failure and until when no pass may call smolvm again.
//
// The workqueue's own backoff does not apply to a failing pass: its status
// write is a watch event that queues the Bottle again at once (a step's
// start and failure are two writes), so a step failing in smolvm ran in a
// loop of tens of passes a second. The backoff is therefore held here, and
// a pass inside it writes nothing (holdBackoff).
type backoffs struct {
	base, max time.Duration

	mu sync.Mutex
	m  map[types.UID]backoff
}

type backoff struct {
	failures   int
	until      time.Time
	generation int64
}

func newBackoffs(base, max time.Duration) *backoffs {
	return &backoffs{base: base, max: max, m: map[types.UID]backoff{}}
}

// failed records a failure of a pass at now and returns how long the
// Bottle waits before the next attempt.
func (b *backoffs) failed(uid types.UID, generation int64, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[uid]
	if e.generation != generation {
		e = backoff{}
	}
	e.failures++
	e.generation = generation
	d := backoffDelay(e.failures, b.base, b.max)
	e.until = now.Add(d)
	b.m[uid] = e
	return d
}

// left is how long the Bottle still waits (0: a pass may call smolvm).
func (b *backoffs) left(uid types.UID, generation int64, retry retryRequest, now time.Time) time.Duration {
	b.mu.Lock()
	e, ok := b.m[uid]
	b.mu.Unlock()
	if !ok {
		return 0
	}
	return holdBackoff(e, generation, retry, now)
}

// forget ends the Bottle's backoff: a pass succeeded, or it is gone.
func (b *backoffs) forget(uid types.UID) {
	b.mu.Lock()
	delete(b.m, uid)
	b.mu.Unlock()
}

// backoffDelay doubles from base with each failure in a row, up to max.
func backoffDelay(failures int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// holdBackoff is how long a pass still waits after a failure: none once a
// new generation or a retry asks for something new.
func holdBackoff(e backoff, generation int64, retry retryRequest, now time.Time) time.Duration {
	if e.failures == 0 || e.generation != generation || retry.Token != "" || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// holdStatus makes a held pass say what the failing pass said, so its
// status write is a no-op (and wakes nothing).
func (s *scope) holdStatus() {
	if c := meta.FindStatusCondition(s.status().Conditions, v1.ConditionReady); c != nil {
		s.wait(c.Reason, c.Message)
	}
}
