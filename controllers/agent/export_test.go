package agent

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// NoStagedCopies is noStagedCopies for the external test package's specs.
const NoStagedCopies = noStagedCopies

// Remembers names the registries of the agent's per-Bottle memory that
// still hold something of the Bottle with this UID and name (all but the
// activity record, another package's, which has its own tests).
func (r *BottleReconciler) Remembers(uid types.UID, key types.NamespacedName) []string {
	m := &r.bottleMemory
	var held []string
	check := func(name string, mu *sync.Mutex, holds func() bool) {
		mu.Lock()
		defer mu.Unlock()
		if holds() {
			held = append(held, name)
		}
	}
	check("expectations", &m.expectations.mu, func() bool { _, ok := m.expectations.m[uid]; return ok })
	check("steps", &m.steps.mu, func() bool { _, ok := m.steps.steps[uid]; return ok })
	check("owners", &m.owners.mu, func() bool { _, ok := m.owners.m[uid]; return ok })
	check("backoff", &m.backoff.mu, func() bool { _, ok := m.backoff.m[uid]; return ok })
	check("metrics", &m.metrics.mu, func() bool { _, ok := m.metrics.phases[key]; return ok })
	check("egress", &m.egress.mu, func() bool { _, ok := m.egress.by[key]; return ok })
	return held
}

// RemembersTemplate says whether the template reconciler still keeps the
// node entry it last applied to the template named key.
func (r *TemplateReconciler) RemembersTemplate(key types.NamespacedName) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.entries[key]
	return ok
}
