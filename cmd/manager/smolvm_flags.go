package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// smolvmTimeouts are the per-verb deadlines of smolvm calls.
type smolvmTimeouts struct {
	smolvm.Timeouts
	exec time.Duration
}

func (t *smolvmTimeouts) bindFlags(fs *flag.FlagSet) {
	t.Timeouts = smolvm.DefaultTimeouts()
	for _, f := range []struct {
		name string
		d    *time.Duration
		what string
	}{
		{"smolvm-status-timeout", &t.Status, "Deadline of machine status."},
		{"smolvm-list-timeout", &t.List, "Deadline of machine ls."},
		{"smolvm-stop-timeout", &t.Stop, "Deadline of machine stop."},
		{"smolvm-delete-timeout", &t.Delete, "Deadline of machine delete (it stops a running machine first)."},
		{"smolvm-create-timeout", &t.Create, "Deadline of machine create."},
		{"smolvm-start-timeout", &t.Start, "Deadline of machine start (the first start pulls the image)."},
		{"smolvm-copy-timeout", &t.Copy, "Deadline of machine cp of an empty file; --smolvm-copy-timeout-per-mib is added per MiB."},
		{"smolvm-copy-timeout-per-mib", &t.CopyPerMiB, "Added to --smolvm-copy-timeout per MiB copied."},
		{"smolvm-version-timeout", &t.Version, "Deadline of smolvm --version at start."},
	} {
		fs.DurationVar(f.d, f.name, *f.d, f.what+" A call that reaches its deadline is killed with its process group and reported with its verb.")
	}
	fs.DurationVar(&t.exec, "smolvm-exec-timeout", smolvm.DefaultExecTimeout, "Deadline of an exec that has none of its own (provisioning steps use their timeoutSeconds).")
}

func (t *smolvmTimeouts) validate() error {
	for name, d := range map[string]time.Duration{
		"status": t.Status, "list": t.List, "stop": t.Stop, "delete": t.Delete, "create": t.Create,
		"start": t.Start, "copy": t.Copy, "version": t.Version, "exec": t.exec,
	} {
		if d < 100*time.Millisecond {
			return fmt.Errorf("--smolvm-%s-timeout must be at least 100ms, not %s", name, d)
		}
	}
	if t.CopyPerMiB < 0 {
		return fmt.Errorf("--smolvm-copy-timeout-per-mib must not be negative, not %s", t.CopyPerMiB)
	}
	return nil
}
