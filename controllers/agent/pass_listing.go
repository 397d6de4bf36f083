package agent

import (
	"context"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// passListing is one template pass's `machine ls`: listed on first use and
// again only after the pass changed the node's machines (changed). A pass
// asks several questions of the listing (is the golden there, its slots,
// the goldens to retire); each used to list again, and a pass runs on
// every slot a Bottle takes.
type passListing struct {
	list  func(ctx context.Context) ([]smolvm.Machine, error)
	ms    []smolvm.Machine
	fresh bool
}

func newPassListing(list func(ctx context.Context) ([]smolvm.Machine, error)) *passListing {
	return &passListing{list: list}
}

// get returns the node's machines, listing them when the pass has no
// listing since its last change.
func (p *passListing) get(ctx context.Context) ([]smolvm.Machine, error) {
	if p.fresh {
		return p.ms, nil
	}
	ms, err := p.list(ctx)
	if err != nil {
		return nil, err
	}
	p.ms, p.fresh = ms, true
	return ms, nil
}

// changed says the pass created, forked or deleted a machine: the next
// question lists again.
func (p *passListing) changed() { p.fresh = false }
