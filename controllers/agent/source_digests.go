package agent

import (
	"sync"
	"time"
)

// sourceDigests remembers, per ConfigMap and Secret the node's Bottles
// read, the resourceVersion it was read at and the digest of each key
// (digest: Secret values keyed with the install's digest key), never a
// value. An entry is current until the next resync; after that one
// metadata read confirms it (same resourceVersion) or the object is read
// again. So an idle node reads each referenced object's metadata once per
// resync, and a value only when it changed.
type sourceDigests struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]digestEntry
	// epoch is the last resync: entries confirmed before it are checked.
	epoch time.Time
}

type digestEntry struct {
	rv      string
	digests map[string]string
	at      time.Time
}

func newSourceDigests() *sourceDigests {
	return &sourceDigests{now: time.Now, m: map[string]digestEntry{}}
}

// current returns the digests of id and whether they were confirmed since
// the last resync; known is false when nothing is remembered of id.
func (d *sourceDigests) current(id string) (digests map[string]string, current, known bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[id]
	if !ok {
		return nil, false, false
	}
	return e.digests, !e.at.Before(d.epoch), true
}

// confirm marks id's digests current when rv is still the version they
// were taken at; otherwise the entry is dropped and the object must be read.
func (d *sourceDigests) confirm(id, rv string) (map[string]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[id]
	if !ok || e.rv != rv || rv == "" {
		delete(d.m, id)
		return nil, false
	}
	e.at = d.now()
	d.m[id] = e
	return e.digests, true
}

func (d *sourceDigests) put(id, rv string, digests map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[id] = digestEntry{rv: rv, digests: digests, at: d.now()}
}

// expire makes every entry be confirmed again (the resync calls it), and
// drops those unused for a whole period, so objects no Bottle names any
// more are forgotten.
func (d *sourceDigests) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, e := range d.m {
		if e.at.Before(d.epoch) {
			delete(d.m, id)
		}
	}
	d.epoch = d.now()
}
