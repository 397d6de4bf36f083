package placement

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// appliedFresh is how long a status this controller applied is taken as
// written even though the cache does not show it yet.
const appliedFresh = 2 * time.Second

// applies remembers the status each Bottle was last given by this
// controller. A pass woken by an event from before that write (the agent
// wrote, or spec.nodeName was set, a moment earlier) reads a cache that
// does not show it yet, and would apply the same status again.
type applies struct {
	mu sync.Mutex
	m  map[types.NamespacedName]applied
}

type applied struct {
	uid types.UID
	st  *v1.BottleStatus
	at  time.Time
}

func (a *applies) remember(b *v1.Bottle, st *v1.BottleStatus, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[types.NamespacedName]applied{}
	}
	a.m[types.NamespacedName{Namespace: b.Namespace, Name: b.Name}] = applied{uid: b.UID, st: st.DeepCopy(), at: now}
}

// justApplied says whether st is what b was given less than appliedFresh
// ago.
func (a *applies) justApplied(b *v1.Bottle, st *v1.BottleStatus, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, ok := a.m[types.NamespacedName{Namespace: b.Namespace, Name: b.Name}]
	return ok && last.uid == b.UID && now.Sub(last.at) < appliedFresh && equality.Semantic.DeepEqual(last.st, st)
}

func (a *applies) forget(key types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, key)
}
