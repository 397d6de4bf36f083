package smolvm

import (
	"fmt"
	"os"
	"time"
)

// Timeouts are the deadlines of smolvm calls, one per verb, so a wedged
// smolvm (a hung VMM, a locked database) costs a worker seconds, not for
// ever. A call that reaches its deadline is killed with its whole process
// group and returns an *Error of class ClassTimeout naming the verb. Zero
// fields take DefaultTimeouts' values. Exec is bounded by its request's
// Timeout (or CLI.DefaultExecTimeout, --smolvm-exec-timeout) instead.
//
// This is the agent's one table of smolvm deadlines: the reconcilers set
// none of their own, so a --smolvm-*-timeout flag (cmd/manager) is the
// deadline the call gets. docs/smolvm.md quotes it.
type Timeouts struct {
	Version time.Duration // smolvm --version at start-up; --smolvm-version-timeout
	Status  time.Duration // machine status and egress-events; --smolvm-status-timeout
	List    time.Duration // machine ls; --smolvm-list-timeout
	Stop    time.Duration // machine stop; --smolvm-stop-timeout
	Delete  time.Duration // machine delete (stops a running machine first); --smolvm-delete-timeout
	Create  time.Duration // machine create and update, plus AllowHostResolution; --smolvm-create-timeout
	Start   time.Duration // machine start, fork and fork release; --smolvm-start-timeout
	// Copy bounds a copy of an empty file (--smolvm-copy-timeout);
	// CopyPerMiB is added per MiB of the file, rounded up
	// (--smolvm-copy-timeout-per-mib): a floor on the throughput smolvm
	// must reach.
	Copy, CopyPerMiB time.Duration
}

// DefaultTimeouts: seconds for the calls that only read or write smolvm's
// database or signal a VM, minutes for create and start (the first start
// pulls the image).
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Version: 10 * time.Second,
		Status:  15 * time.Second,
		List:    15 * time.Second,
		Stop:    30 * time.Second,
		Delete:  60 * time.Second, // stops a running machine first
		Create:  2 * time.Minute,
		Start:   5 * time.Minute,
		Copy:    30 * time.Second, CopyPerMiB: time.Second,
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// deadline is the time a call of verb may take; bytes sizes a copy. A verb
// without a case is a programming error, not a default: it panics, and
// TestEveryVerbIsInTheTable finds every verb constant of this package.
func (t Timeouts) deadline(verb string, bytes int64) time.Duration {
	def := DefaultTimeouts()
	switch verb {
	case verbVersion:
		return orDefault(t.Version, def.Version)
	case verbStatus, verbEgressEvents:
		// egress-events, like status, reads what smolvm wrote.
		return orDefault(t.Status, def.Status)
	case verbList:
		return orDefault(t.List, def.List)
	case verbStop:
		return orDefault(t.Stop, def.Stop)
	case verbDelete:
		return orDefault(t.Delete, def.Delete)
	case verbCreate, verbUpdate:
		// update, like create, writes smolvm's database and boots nothing.
		return orDefault(t.Create, def.Create)
	case verbStart, verbFork, verbForkRelease:
		// A fork boots its clones; a release runs in a booted one.
		return orDefault(t.Start, def.Start)
	case verbCopyIn:
		mib := (bytes + 1<<20 - 1) >> 20
		return orDefault(t.Copy, def.Copy) + time.Duration(mib)*orDefault(t.CopyPerMiB, def.CopyPerMiB)
	}
	panic(fmt.Sprintf("smolvm: verb %q has no deadline in Timeouts", verb))
}

// fileSize is the size of a host file, 0 when it cannot be read (smolvm
// then reports the problem itself).
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
