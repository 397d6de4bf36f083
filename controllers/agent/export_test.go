package agent

import (
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
	m.expectations.mu.Lock()
	if _, ok := m.expectations.m[uid]; ok {
		held = append(held, "expectations")
	}
	m.expectations.mu.Unlock()
	m.steps.mu.Lock()
	if _, ok := m.steps.steps[uid]; ok {
		held = append(held, "steps")
	}
	m.steps.mu.Unlock()
	m.owners.mu.Lock()
	if _, ok := m.owners.m[uid]; ok {
		held = append(held, "owners")
	}
	m.owners.mu.Unlock()
	m.backoff.mu.Lock()
	if _, ok := m.backoff.m[uid]; ok {
		held = append(held, "backoff")
	}
	m.backoff.mu.Unlock()
	m.metrics.mu.Lock()
	if _, ok := m.metrics.phases[key]; ok {
		held = append(held, "metrics")
	}
	m.metrics.mu.Unlock()
	m.egress.mu.Lock()
	if _, ok := m.egress.by[key]; ok {
		held = append(held, "egress")
	}
	m.egress.mu.Unlock()
	return held
}
