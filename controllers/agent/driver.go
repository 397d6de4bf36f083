package agent

import (
	"context"
	"os"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Machines is the part of the smolvm driver the reconciler uses. The real
// implementation is *smolvm.CLI; tests run it against the smolvm simulator.
type Machines interface {
	Create(ctx context.Context, spec smolvm.MachineSpec) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]smolvm.Machine, error)
	Exec(ctx context.Context, req smolvm.ExecRequest) (smolvm.ExecResult, error)
	CopyIn(ctx context.Context, machine, hostPath, guestPath string, mode os.FileMode, uid, gid int) error
	// Update sets a stopped machine's vCPUs and memory (0: unchanged).
	Update(ctx context.Context, name string, cpus, memMiB int) error
	// EgressEvents lists what the machine's egress policy refused.
	EgressEvents(ctx context.Context, name string, limit int) ([]smolvm.EgressDenial, error)
}

var _ Machines = (*smolvm.CLI)(nil)
