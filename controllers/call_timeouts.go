package controllers

import "time"

// CallTimeouts bound each smolvm call the reconciler makes, so a hung smolvm
// becomes a condition naming the verb (SmolvmTimeout) and frees its worker
// instead of stopping every Bottle on the node. Steps are bounded by their
// own timeoutSeconds instead.
type CallTimeouts struct {
	Status, Create, Start, Stop, Delete time.Duration
	// Lookup bounds the small guest execs (owner ids, parent directories).
	Lookup time.Duration
	// Copy is the base of a copy's deadline; each MiB adds CopyPerMiB.
	Copy, CopyPerMiB time.Duration
}

// DefaultCallTimeouts: seconds for questions, minutes for create and start
// (a first start pulls the image).
var DefaultCallTimeouts = CallTimeouts{
	Status: 30 * time.Second, Create: 2 * time.Minute, Start: 5 * time.Minute,
	Stop: 2 * time.Minute, Delete: 2 * time.Minute, Lookup: 30 * time.Second,
	Copy: 30 * time.Second, CopyPerMiB: time.Second,
}

func (t CallTimeouts) withDefaults() CallTimeouts {
	d := DefaultCallTimeouts
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Status, &d.Status}, {&t.Create, &d.Create}, {&t.Start, &d.Start}, {&t.Stop, &d.Stop},
		{&t.Delete, &d.Delete}, {&t.Lookup, &d.Lookup}, {&t.Copy, &d.Copy}, {&t.CopyPerMiB, &d.CopyPerMiB},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return t
}

func (t CallTimeouts) copyTimeout(size int) time.Duration {
	return t.Copy + time.Duration(size>>20)*t.CopyPerMiB
}
