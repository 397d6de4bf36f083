package agentlease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// ErrDeposed is what Run returns once another agent holds the node's Lease
// that this process held: it must stop what it runs and give way.
var ErrDeposed = errors.New("another agent holds the node's lease now")

// Elector keeps node's Lease for this process.
//
// client-go's leader election, which controller-runtime's manager uses,
// ends leadership once renewals have failed for RenewDeadline, and the
// manager then exits at once: a 10-second etcd or API-server hiccup would
// kill every running step and session on every node, and the steps would
// run again. But while nobody can write the Lease, nobody can take it
// either. So the holder here is, by its own clock:
//
//   - leading while its last renewal started less than RenewDeadline ago:
//     it may start new work (Wait returns, Held is true);
//   - adrift once renewals have failed for longer: it starts nothing new,
//     keeps running what runs (steps, sessions), and keeps renewing;
//   - deposed once it reads another holder in the Lease: Run returns
//     ErrDeposed and the process gives way.
//
// A standby takes the Lease only after reading one record unchanged for the
// record's leaseDuration (decide). Its first read of a record comes after
// the holder's write of it, and the holder stops starting work
// RenewDeadline (< leaseDuration) after starting that write: so a standby
// takes over only after the holder stopped starting work, clocks running at
// the same rate. What the old holder still runs is killed when it reads the
// new holder, at most RetryPeriod later; when both still reach the API
// server that is the only overlap (see docs/security.md).
type Elector struct {
	lock          *Lock
	duration      time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	log           logr.Logger
	now           func() time.Time

	mu sync.Mutex
	// held: this process holds the Lease, as of its last read or write.
	held bool
	// renewed is when the last successful renewal (or acquisition) started.
	renewed time.Time
	// seen is the record last read and seenSince when this process first
	// read it (reset by a failed read).
	seen      []byte
	seenSince time.Time
	lastErr   error
	adrift    bool
	elected   chan struct{}
	electOnce sync.Once
	// deposed is closed once another holder deposed this process.
	deposed    chan struct{}
	deposeOnce sync.Once
	// wake is closed (and replaced) at every successful renewal, for Wait.
	wake chan struct{}
}

// NewElector returns the elector for lock. The timings are the flags'
// (--lease-duration and so on), validated by the caller.
func NewElector(lock *Lock, duration, renewDeadline, retryPeriod time.Duration, log logr.Logger) *Elector {
	return &Elector{
		lock: lock, duration: duration, renewDeadline: renewDeadline, retryPeriod: retryPeriod,
		log: log, now: time.Now, elected: make(chan struct{}), wake: make(chan struct{}),
		deposed: make(chan struct{}),
	}
}

// Elected is closed once this process first holds the Lease.
func (e *Elector) Elected() <-chan struct{} { return e.elected }

// Deposed is closed once another holder deposed this process: what it
// still runs must stop at once, not drain.
func (e *Elector) Deposed() <-chan struct{} { return e.deposed }

// Held reports whether this process may start work now: it holds the Lease
// and renewed it less than RenewDeadline ago.
func (e *Elector) Held() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leadingLocked(e.now())
}

func (e *Elector) leadingLocked(now time.Time) bool {
	return e.held && now.Before(e.renewed.Add(e.renewDeadline))
}

// Wait returns once Held is true, or with ctx's error.
func (e *Elector) Wait(ctx context.Context) error {
	for {
		e.mu.Lock()
		if e.leadingLocked(e.now()) {
			e.mu.Unlock()
			return nil
		}
		wake := e.wake
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// Run keeps trying to acquire and renew the Lease every RetryPeriod until
// ctx ends (nil) or another holder deposed this process (ErrDeposed).
func (e *Elector) Run(ctx context.Context) error {
	t := time.NewTicker(e.retryPeriod)
	defer t.Stop()
	for {
		if err := e.tryOnce(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tryOnce reads the Lease once and acts as decide says.
func (e *Elector) tryOnce(ctx context.Context) error {
	start := e.now()
	rec, raw, err := e.lock.Get(ctx)
	if ctx.Err() != nil {
		return nil
	}
	obs := observation{}
	switch {
	case apierrors.IsNotFound(err):
		obs.Missing = true
	case err != nil:
		obs.ReadFailed = true
	default:
		obs.Holder, obs.Duration = rec.HolderIdentity, time.Duration(rec.LeaseDurationSeconds)*time.Second
	}

	e.mu.Lock()
	held := e.held
	if obs.ReadFailed || !bytes.Equal(raw, e.seen) {
		e.seen, e.seenSince = raw, start
	}
	if obs.ReadFailed {
		e.seen = nil
	}
	obs.Unchanged = start.Sub(e.seenSince)
	e.mu.Unlock()

	switch decide(e.lock.Identity(), held, obs) {
	case leaseWait:
		if obs.ReadFailed {
			e.failed(start, err)
		}
		return nil
	case leaseYield:
		e.mu.Lock()
		e.held = false
		e.wake = closeAndRenew(e.wake)
		e.mu.Unlock()
		e.deposeOnce.Do(func() { close(e.deposed) })
		e.log.Info("the node's lease is held by another agent now: giving way (running steps are stopped)",
			"lease", e.lock.Describe(), "holder", obs.Holder)
		return fmt.Errorf("%w (%s)", ErrDeposed, obs.Holder)
	}

	next := resourcelock.LeaderElectionRecord{
		HolderIdentity:       e.lock.Identity(),
		LeaseDurationSeconds: int(e.duration / time.Second),
		AcquireTime:          metav1.NewTime(start),
		RenewTime:            metav1.NewTime(start),
	}
	if rec != nil {
		next.LeaderTransitions = rec.LeaderTransitions
		if rec.HolderIdentity == next.HolderIdentity {
			next.AcquireTime = rec.AcquireTime
		} else {
			next.LeaderTransitions++
		}
	}
	if obs.Missing {
		err = e.lock.Create(ctx, next)
	} else {
		err = e.lock.Update(ctx, next)
	}
	if err != nil {
		if ctx.Err() == nil {
			e.failed(start, err)
		}
		return nil
	}
	e.renewedAt(start)
	return nil
}

// renewedAt records a successful write started at start.
func (e *Elector) renewedAt(start time.Time) {
	e.mu.Lock()
	wasAdrift, first := e.adrift, !e.held
	e.held, e.renewed, e.lastErr, e.adrift = true, start, nil, false
	e.seen = nil // our own write: a standby's clock is not ours to keep
	e.wake = closeAndRenew(e.wake)
	e.mu.Unlock()
	if first {
		e.log.Info("holding the node's lease", "lease", e.lock.Describe())
		e.electOnce.Do(func() { close(e.elected) })
	}
	if wasAdrift {
		e.log.Info("renewed the node's lease again: starting new work again", "lease", e.lock.Describe())
	}
}

// failed notes a failed read or write; a holder whose renewals have failed
// for RenewDeadline says once that it starts nothing new.
func (e *Elector) failed(start time.Time, err error) {
	e.mu.Lock()
	e.lastErr = err
	becameAdrift := e.held && !e.adrift && !e.leadingLocked(start)
	if becameAdrift {
		e.adrift = true
	}
	since := e.renewed
	e.mu.Unlock()
	if becameAdrift {
		e.log.Info("cannot renew the node's lease: starting no new work, keeping the running steps and sessions, and retrying",
			"lease", e.lock.Describe(), "lastRenewal", since, "error", err.Error())
	}
}

// Release gives the Lease up if this process holds it, so a standby takes
// over at once. Call it only once nothing started under the Lease runs.
func (e *Elector) Release(ctx context.Context) error {
	e.mu.Lock()
	held := e.held
	e.held = false
	e.mu.Unlock()
	if !held {
		return nil
	}
	rec, _, err := e.lock.Get(ctx)
	if err != nil {
		return err
	}
	if rec.HolderIdentity != e.lock.Identity() {
		return nil
	}
	now := metav1.NewTime(e.now())
	return e.lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaseDurationSeconds: 1, AcquireTime: now, RenewTime: now, LeaderTransitions: rec.LeaderTransitions,
	})
}

// Readyz fails unless this process may start work, saying why: a standby
// names the holder, an adrift holder says since when it could not renew.
// Kubernetes keeps a not-ready agent out of Service endpoints.
func (e *Elector) Readyz() healthz.Checker {
	return func(*http.Request) error {
		e.mu.Lock()
		leading, held, renewed, lastErr := e.leadingLocked(e.now()), e.held, e.renewed, e.lastErr
		e.mu.Unlock()
		switch {
		case leading:
			return nil
		case held:
			return fmt.Errorf("adrift: lease %s not renewed since %s (%v): running steps and sessions continue, nothing new starts",
				e.lock.Describe(), renewed.UTC().Format(time.RFC3339), lastErr)
		}
		if h := e.lock.Holder(); h != "" && h != e.lock.Identity() {
			return fmt.Errorf("standby: lease %s held by %s", e.lock.Describe(), h)
		}
		return fmt.Errorf("standby: acquiring lease %s", e.lock.Describe())
	}
}

func closeAndRenew(ch chan struct{}) chan struct{} {
	close(ch)
	return make(chan struct{})
}
