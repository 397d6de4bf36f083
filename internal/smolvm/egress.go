package smolvm

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// EgressDenial is one outbound connect, sendto or resolve a machine's egress
// policy refused, as `smolvm machine egress-events --json` reports it
// (smolvm:src/agent/manager.rs:386-397).
type EgressDenial struct {
	// Timestamp is RFC 3339 as smolvm's network runtime logged it (second
	// precision, crates/smolvm-network/src/lib.rs:211-217), or empty.
	Timestamp string `json:"timestamp"`
	// Operation is "connect" (TCP), "sendto" (UDP) or "resolve" (DNS).
	Operation string `json:"operation"`
	// Dest is "ip:port" for connect and sendto, the host name for resolve.
	Dest string `json:"dest"`
}

// Time parses Timestamp; ok is false when smolvm logged none.
func (d EgressDenial) Time() (t time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, d.Timestamp)
	return t, err == nil
}

// DefaultEgressEventsLimit is smolvm's own --limit default
// (src/cli/machine.rs:4052-4054).
const DefaultEgressEventsLimit = 200

// EgressEvents returns the newest limit egress denials of machine name,
// oldest first. smolvm answers for any name: a machine that does not exist,
// has no policy or refused nothing has none (src/agent/manager.rs:403-425).
// It reads a file smolvm's VMM appends to and boots nothing, so it has the
// status deadline.
func (c *CLI) EgressEvents(ctx context.Context, name string, limit int) ([]EgressDenial, error) {
	argv, err := egressEventsArgv(name, limit)
	if err != nil {
		return nil, precheckFailed(verbEgressEvents, err)
	}
	out, err := c.run(ctx, verbEgressEvents, argv)
	if err != nil {
		return nil, err
	}
	events, perr := ParseEgressEvents([]byte(out))
	if perr != nil {
		return nil, &Error{Verb: verbEgressEvents, Class: ClassOther, ExitCode: 0, Message: perr.Error(), Err: perr}
	}
	return events, nil
}

// ParseEgressEvents parses `machine egress-events --json` (serde's pretty
// array; `[]` when there are none).
func ParseEgressEvents(data []byte) ([]EgressDenial, error) {
	var events []EgressDenial
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("parse egress-events output: %w", err)
	}
	return events, nil
}
