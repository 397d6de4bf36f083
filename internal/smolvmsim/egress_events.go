package smolvmsim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// egressDenialsLog is the per-machine audit file smolvm's virtio-net runtime
// appends one line per refused connect, sendto or resolve to
// (smolvm:crates/smolvm-network/src/lib.rs:193, src/agent/manager.rs:380).
const egressDenialsLog = "egress-denials.log"

// egressDenialScanBytes bounds how much of the log's tail egress-events reads
// (smolvm:src/agent/manager.rs:402, EGRESS_DENIAL_SCAN_BYTES).
const egressDenialScanBytes = 256 * 1024

// egressRotateBytes: past this the log is renamed to .log.1 before the next
// line (smolvm:crates/smolvm-network/src/egress.rs:280-284).
const egressRotateBytes = 8 * 1024 * 1024

func (s *store) egressLog(name string) string {
	return filepath.Join(s.machineDir(name), egressDenialsLog)
}

// egressDenial is one line of `machine egress-events --json`
// (smolvm:src/agent/manager.rs:386-397, EgressDenial).
type egressDenial struct {
	Timestamp string `json:"timestamp"`
	Operation string `json:"operation"`
	Dest      string `json:"dest"`
}

// denialRecorder appends denials to a machine's audit log in smolvm's line
// format, `[<RFC 3339 seconds>]: egress policy denied <op> <dest>`
// (smolvm:crates/smolvm-network/src/lib.rs:211-217, egress.rs:275-303).
type denialRecorder struct {
	mu   sync.Mutex
	path string
	now  func() time.Time
}

// record writes one denial; dest is "to ip:port" for connect (as smolvm's
// TCP relay passes it, tcp_relay.rs:294), "ip:port" for sendto, the name for
// resolve.
func (d *denialRecorder) record(operation, dest string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if fi, err := os.Stat(d.path); err == nil && fi.Size() > egressRotateBytes {
		_ = os.Rename(d.path, d.path+".1")
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	now := time.Now
	if d.now != nil {
		now = d.now
	}
	_, _ = fmt.Fprintf(f, "[%s]: egress policy denied %s %s\n", now().UTC().Format("2006-01-02T15:04:05Z"), operation, dest)
}

// readEgressDenials is smolvm's read_egress_denials
// (src/agent/manager.rs:406-425): the newest limit events of the log's tail,
// oldest first; no log is no events, never an error.
func readEgressDenials(path string, limit int) []egressDenial {
	f, err := os.Open(path)
	if err != nil {
		return []egressDenial{}
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > egressDenialScanBytes {
		_, _ = f.Seek(-egressDenialScanBytes, io.SeekEnd)
	}
	tail, err := io.ReadAll(f)
	if err != nil {
		return []egressDenial{}
	}
	events := []egressDenial{}
	sc := bufio.NewScanner(bytes.NewReader(tail))
	sc.Buffer(make([]byte, 64*1024), egressDenialScanBytes)
	for sc.Scan() {
		if ev, ok := parseEgressDenialLine(sc.Text()); ok {
			events = append(events, ev)
		}
	}
	if len(events) > limit {
		events = events[len(events)-limit:]
	}
	return events
}

// parseEgressDenialLine is smolvm's parse_egress_denial_line
// (src/agent/manager.rs:437-468): anchored on the marker, the operation one
// of connect/sendto/resolve, a leading "to " dropped from the destination, the
// bracketed first token as the timestamp.
func parseEgressDenialLine(line string) (egressDenial, bool) {
	const marker = "egress policy denied "
	i := strings.Index(line, marker)
	if i < 0 {
		return egressDenial{}, false
	}
	op, rest, ok := strings.Cut(line[i+len(marker):], " ")
	if !ok || (op != "connect" && op != "sendto" && op != "resolve") {
		return egressDenial{}, false
	}
	dest := strings.TrimSpace(strings.TrimPrefix(rest, "to "))
	if dest == "" {
		return egressDenial{}, false
	}
	ts := ""
	if r, ok := strings.CutPrefix(line, "["); ok {
		if f := strings.Fields(r); len(f) > 0 {
			ts = strings.TrimRight(strings.TrimRight(f[0], ":"), "]")
		}
	}
	return egressDenial{Timestamp: ts, Operation: op, Dest: dest}, true
}

var egressEventsSpec = &cmdSpec{
	usage: "smolvm machine egress-events [OPTIONS]",
	help:  "Show egress denials — outbound connections the machine's egress policy refused",
	flags: []flagSpec{
		{long: "--name", short: "-n", meta: "<NAME>"},
		{long: "--limit", meta: "<LIMIT>"},
		{long: "--json"},
	},
}

// cmdEgressEvents is `machine egress-events` (smolvm:src/cli/machine.rs:
// 4038-4096): a machine that does not exist, or never refused anything, has
// no events and exits 0.
func cmdEgressEvents(e *env, args []string) error {
	p, err := egressEventsSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	if name == "" {
		name = "default"
	}
	limit := 200
	if p.has("--limit") {
		v := p.one("--limit")
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			return egressEventsSpec.usageErr("invalid value '%s' for '--limit <LIMIT>': %s", v, clapIntError(v))
		}
		limit = int(min(n, uint64(1<<31)))
	}
	if err := applyFaults("egress-events", name); err != nil {
		return err
	}
	events := []egressDenial{}
	// smolvm joins any name onto its data dir; the simulator reads only a
	// valid one's (an invalid name has no machine, so no events).
	if validName(name) {
		s, err := openStore()
		if err != nil {
			return err
		}
		events = readEgressDenials(s.egressLog(name), limit)
	}
	if p.bools["--json"] {
		return printJSON(e, events)
	}
	if len(events) == 0 {
		_, _ = fmt.Fprintf(e.stdout, "No egress denials recorded for '%s'.\n", name)
		return nil
	}
	_, _ = fmt.Fprintf(e.stdout, "%-30s %-9s DESTINATION\n", "TIMESTAMP", "OP")
	for _, ev := range events {
		_, _ = fmt.Fprintf(e.stdout, "%-30s %-9s %s\n", ev.Timestamp, ev.Operation, ev.Dest)
	}
	return nil
}

// clapIntError is Rust's ParseIntError text as clap shows it for a usize.
func clapIntError(v string) string {
	if v == "" {
		return "cannot parse integer from empty string"
	}
	if len(v) > 19 && strings.Trim(v, "0123456789") == "" {
		return "number too large to fit in target type"
	}
	return "invalid digit found in string"
}
