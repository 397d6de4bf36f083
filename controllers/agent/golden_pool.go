package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Forks is the part of the smolvm driver a golden and its held slots use.
// The real implementation is *smolvm.CLI.
type Forks interface {
	StartForkable(ctx context.Context, name string) error
	Fork(ctx context.Context, req smolvm.ForkRequest) error
	ForkRelease(ctx context.Context, name string, env []smolvm.EnvVar) error
	DeleteCascade(ctx context.Context, name string) error
	Exec(ctx context.Context, req smolvm.ExecRequest) (smolvm.ExecResult, error)
	List(ctx context.Context) ([]smolvm.Machine, error)
}

var _ Forks = (*smolvm.CLI)(nil)

// forkReadyHelper is smolvm's guest command that marks a workload's
// forkpoint: it writes /run/smolvm/forkpoint/ready and blocks until the
// machine is a released clone. Held slots can only be forked from a
// golden that reached one, and only released when they inherited it.
const forkReadyHelper = "smolvm-fork-ready"

// forkReadyLine is what the helper prints once the marker is written.
const forkReadyLine = "smolvm forkpoint ready"

// forkpointWait bounds the helper's exec: it never returns in the golden
// (nothing releases a golden), so the exec ends at its timeout and the
// marker stays, which is all a later `fork --hold` looks at.
const forkpointWait = 2 * time.Second

// markForkpoint puts a provisioned golden at its forkpoint. The golden has
// no workload of its own: a Bottle's work starts with its own execs after
// the fork, so the helper only has to publish the marker.
func markForkpoint(ctx context.Context, m Forks, golden string) error {
	res, err := m.Exec(ctx, smolvm.ExecRequest{Machine: golden, Argv: []string{forkReadyHelper}, Timeout: forkpointWait})
	if strings.Contains(res.Stdout, forkReadyLine) && (err == nil || smolvm.IsTimeout(err)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("marking the forkpoint of golden %s: %w", golden, err)
	}
	return fmt.Errorf("marking the forkpoint of golden %s: %s exited %d: %s", golden, forkReadyHelper, res.ExitCode,
		strings.TrimSpace(res.Stderr))
}

// fillSlots forks the named held slots one at a time, so each gets the name
// decideSlots chose (a batch would name them PREFIX-0… itself). It stops at
// the first failure; the slots forked before it stay.
func fillSlots(ctx context.Context, m Forks, golden string, names []string) (forked int, err error) {
	for _, n := range names {
		if err := m.Fork(ctx, smolvm.ForkRequest{Golden: golden, Name: n, Hold: true}); err != nil {
			return forked, err
		}
		forked++
	}
	return forked, nil
}

// errSlotLost: a release failed after smolvm had claimed the slot (its
// activation failed); the slot will never be handed out and must go.
var errSlotLost = errors.New("held slot claimed but not activated")

// errSlotGone: the slot was not a free held slot when smolvm looked (it
// was released or deleted since the list that showed it free).
var errSlotGone = errors.New("not a free held slot")

// takeSlot releases a free held slot to its new owner, with fork
// parameters that are not secrets (they are on smolvm's argv). When the
// slot was claimed but not activated, the error wraps errSlotLost; when it
// was no free slot, errSlotGone.
func takeSlot(ctx context.Context, m Forks, slot string, params []smolvm.EnvVar) error {
	err := m.ForkRelease(ctx, slot, params)
	if err != nil && strings.Contains(err.Error(), "was claimed and will not be reused") {
		return fmt.Errorf("%w: %w", errSlotLost, err)
	}
	if err != nil && (strings.Contains(err.Error(), "is not a held pool slot") || smolvm.IsNotFound(err)) {
		return fmt.Errorf("%w: %w", errSlotGone, err)
	}
	return err
}

// forkFor forks a clone of golden named name on demand.
func forkFor(ctx context.Context, m Forks, golden, name string, params []smolvm.EnvVar) error {
	return m.Fork(ctx, smolvm.ForkRequest{Golden: golden, Name: name, Env: params})
}

// retireGolden deletes a golden that retirable allowed, with its free
// slots (clones first: delete --cascade).
func retireGolden(ctx context.Context, m Forks, golden string) error {
	if err := m.DeleteCascade(ctx, golden); err != nil && !smolvm.IsNotFound(err) {
		return err
	}
	return nil
}
