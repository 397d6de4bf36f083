package smolvmsim

import (
	"fmt"
	"strings"
)

var updateSpec = &cmdSpec{
	usage: "smolvm machine update [OPTIONS] --name <NAME>",
	help:  "Modify settings on a stopped machine",
	flags: []flagSpec{
		{long: "--name", short: "-n", meta: "<NAME>", required: true},
		{long: "--cpus", meta: "<N>"},
		{long: "--mem", meta: "<MiB>"},
	},
}

// cmdUpdate is `machine update` for vCPUs and memory
// (smolvm:src/cli/machine.rs:4183-4266): a stopped or created machine only;
// the record changes, the disks stay, the next start uses the new size.
func cmdUpdate(e *env, args []string) error {
	p, err := updateSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	s, r, unlock, err := lockedMachine(name, true)
	if err != nil {
		if f, ok := err.(*failure); ok && f.msg == msgVMNotFound(name) {
			return fail("config operation failed: update: machine '%s' not found", name)
		}
		return err
	}
	defer unlock()
	if r.State != "stopped" && r.State != "created" {
		return fail("invalid vm state: expected stopped, got %s", strings.ToUpper(r.State[:1])+r.State[1:])
	}
	var changes []string
	if p.has("--cpus") {
		cpus, err := parseUint(updateSpec, "--cpus <N>", p.one("--cpus"), 8)
		if err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("  cpus: %d → %d", r.CPUs, cpus))
		r.CPUs = cpus
	}
	if p.has("--mem") {
		mem, err := parseUint(updateSpec, "--mem <MiB>", p.one("--mem"), 32)
		if err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("  memory: %d MiB → %d MiB", r.MemoryMiB, mem))
		r.MemoryMiB = mem
	}
	if len(changes) == 0 {
		_, _ = fmt.Fprintln(e.stdout, "No changes specified.")
		return nil
	}
	if err := s.save(r); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(e.stdout, "Updated machine '%s':\n%s\n\nStart with: smolvm machine start --name %s\n", name, strings.Join(changes, "\n"), name)
	return nil
}
