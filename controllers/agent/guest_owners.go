package agent

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// missingOwners remembers, per Bottle, the file owners its guest lacked
// when files were last placed, so a file waiting for its owner is not
// copied again on every pass. Owners are resolved in the guest by the
// placement script itself (no call of their own); only their absence is
// worth remembering. It is forgotten when a step runs (a step may add the
// user), when the machine is created, and after ttl (a person may add the
// user by hand: the next resync tries again).
type missingOwners struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[types.UID]map[string]time.Time
}

func newMissingOwners(ttl time.Duration) *missingOwners {
	return &missingOwners{ttl: ttl, now: time.Now, m: map[types.UID]map[string]time.Time{}}
}

// missing says whether owner was missing in the Bottle's guest recently.
func (o *missingOwners) missing(uid types.UID, owner string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.m[uid][owner]
	return ok && o.now().Sub(at) < o.ttl
}

func (o *missingOwners) add(uid types.UID, owner string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[uid] == nil {
		o.m[uid] = map[string]time.Time{}
	}
	o.m[uid][owner] = o.now()
}

// forget drops what is known of the Bottle's guest users.
func (o *missingOwners) forget(uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, uid)
}
