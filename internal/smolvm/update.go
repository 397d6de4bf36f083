package smolvm

import (
	"context"
	"strconv"
)

// `machine update` changes a stopped machine's record; the change takes
// effect at its next start and the disks are kept
// (smolvm:src/cli/machine.rs:4183-4266, 4279-4288: the machine must be
// stopped or created; a running one is `invalid vm state: expected
// stopped, got Running`). The driver uses it for CPUs and memory only: the
// image and the egress allowlist still need a new machine.
const (
	subUpdate  = "update"
	verbUpdate = "update"
)

func updateArgv(name string, cpus, memMiB int) ([]string, error) {
	argv, err := nameOnlyArgv(verbUpdate, subUpdate, name)
	if err != nil {
		return nil, err
	}
	if cpus <= 0 && memMiB <= 0 {
		return nil, newUsageError(verbUpdate, "nothing to update")
	}
	if cpus > 255 || int64(memMiB) > 1<<32-1 {
		return nil, newUsageError(verbUpdate, "cpus or memory_mib out of range")
	}
	if cpus > 0 {
		argv = append(argv, flagCPUs, strconv.Itoa(cpus))
	}
	if memMiB > 0 {
		argv = append(argv, flagMem, strconv.Itoa(memMiB))
	}
	return argv, nil
}

// Update sets a stopped machine's vCPUs and memory (0 leaves one as it
// is) for its next start, keeping its disks.
func (c *CLI) Update(ctx context.Context, name string, cpus, memMiB int) error {
	argv, err := updateArgv(name, cpus, memMiB)
	if err != nil {
		return precheckFailed(verbUpdate, err)
	}
	_, err = c.run(ctx, verbUpdate, argv)
	return err
}
