package smolvmsim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	defaultCPUs      = 4
	defaultMemoryMiB = 8192
	maxNameLen       = 128
)

// Texts from the smolvm CLI contract (docs: /work/shared/docs/smolvm-cli.md);
// contract_test.go checks them byte for byte.
func msgAlreadyExists(n string) string {
	return fmt.Sprintf("config operation failed: create machine: machine '%s' already exists or is being created", n)
}
func msgVMNotFound(n string) string { return "vm not found: " + n }

// lockedMachine loads an existing machine under its lock (exclusive for
// state changes); the caller releases it with unlock. A missing machine, or
// a name smolvm would reject, is smolvm's "vm not found".
func lockedMachine(name string, exclusive bool) (*store, *record, func(), error) {
	s, err := openStore()
	if err != nil {
		return nil, nil, nil, err
	}
	if !validName(name) {
		return nil, nil, nil, fail("%s", msgVMNotFound(name))
	}
	unlock, err := s.lockMachine(name, exclusive)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := s.load(name)
	if err == nil && r == nil {
		err = fail("%s", msgVMNotFound(name))
	}
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return s, r, unlock, nil
}
func msgStatusNotFound(n string) string {
	return fmt.Sprintf("config operation failed: machine status: machine '%s' not found", n)
}
func msgNotRunning(n string) string {
	return fmt.Sprintf("agent operation failed: connect: machine '%s' is not running. Use 'smolvm machine start --name %s' first.", n, n)
}

const (
	msgNoKVM         = "kvm not available: KVM not available. Ensure KVM kernel module is loaded.\nTry: sudo modprobe kvm && sudo modprobe kvm_intel  # (or kvm_amd)"
	msgKVMPermission = "kvm permission denied: Cannot access /dev/kvm (permission denied).\nAdd your user to the 'kvm' group:\n\n sudo usermod -aG kvm $USER\n\nThen log out and log back in for the change to take effect."
)

// maxEffectiveCPUs is smolvm's vCPU cap (src/data/resources.rs:79).
const maxEffectiveCPUs = 16

// defaultPullLatency is how long the first start "pulls" when
// SMOLVM_SIM_PULL does not say: never instant, so tests see a first start
// slower than the next.
const defaultPullLatency = 150 * time.Millisecond

// pullLatency is SMOLVM_SIM_PULL (a Go duration; "0" for none).
func pullLatency() time.Duration {
	if v := os.Getenv("SMOLVM_SIM_PULL"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
	}
	return defaultPullLatency
}

var nameFlag = flagSpec{long: "--name", meta: "<NAME>", required: true}

var createSpec = &cmdSpec{
	usage: "smolvm machine create [OPTIONS] --name <NAME>",
	help:  "Create a machine (the image is pulled at the first start)",
	flags: []flagSpec{
		nameFlag,
		{long: "--image", meta: "<IMAGE>"},
		{long: "--cpus", meta: "<CPUS>"},
		{long: "--mem", meta: "<MEM>"},
		{long: "--net"},
		{long: "--allow-host", meta: "<HOST>", multi: true},
		{long: "--allow-cidr", meta: "<CIDR>", multi: true},
		{long: "--env", short: "-e", meta: "<KEY=VALUE>", multi: true},
		{long: "--workdir", short: "-w", meta: "<DIR>"},
		{long: "--label", meta: "<KEY=VALUE>", multi: true},
	},
}

// nameProblem applies smolvm's machine-name rules (validate_vm_name,
// smolvm:src/data/mod.rs). The driver (internal/smolvm/names.go) and the
// CRD's CEL rule hold the same rule; this copy is deliberate: the
// simulator imports nothing of the project, so it is an independent
// oracle of what smolvm accepts, and a driver that drifted from smolvm
// fails against it instead of agreeing with itself.
func nameProblem(n string) string {
	switch {
	case n == "":
		return "name cannot be empty"
	case len(n) > maxNameLen:
		return fmt.Sprintf("name must be at most %d characters", maxNameLen)
	case !isAlnum(n[0]):
		return "name must start with a letter or digit"
	case strings.HasSuffix(n, "-"):
		return "name must not end with '-'"
	case strings.Contains(n, "--"):
		return "name must not contain '--'"
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !isAlnum(c) && c != '-' && c != '_' {
			return "name may only contain letters, digits, '-' and '_'"
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validName: a name smolvm could never have stored is simply not found.
func validName(n string) bool { return nameProblem(n) == "" }

func parseUint(spec *cmdSpec, flag, v string, bits int) (int, error) {
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, spec.usageErr("invalid value '%s' for '%s': %v", v, flag, err.(*strconv.NumError).Err)
	}
	return int(n), nil
}

func cmdCreate(e *env, args []string) error {
	p, err := createSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	r := &record{Name: name, State: "created", CPUs: defaultCPUs, MemoryMiB: defaultMemoryMiB,
		CreatedAt: time.Now().UTC().Format(time.RFC3339), Labels: map[string]string{}}
	if p.has("--cpus") {
		if r.CPUs, err = parseUint(createSpec, "--cpus <CPUS>", p.one("--cpus"), 8); err != nil {
			return err
		}
		if r.CPUs == 0 {
			return createSpec.usageErr("invalid value '0' for '--cpus <CPUS>': must be at least 1")
		}
		if r.CPUs > maxEffectiveCPUs {
			// smolvm:src/data/resources.rs:79,91-97: warned, then capped at
			// boot; the record (and status) keeps the requested count.
			_, _ = fmt.Fprintf(e.stderr, "warning: requested %d vCPUs but the hypervisor supports at most %d; the VM will run with %d vCPUs\n",
				r.CPUs, maxEffectiveCPUs, maxEffectiveCPUs)
		}
	}
	if p.has("--mem") {
		if r.MemoryMiB, err = parseUint(createSpec, "--mem <MEM>", p.one("--mem"), 32); err != nil {
			return err
		}
	}
	if p.has("--image") {
		img := p.one("--image")
		r.Image = &img
	}
	r.AllowHosts = p.values["--allow-host"]
	for _, h := range r.AllowHosts {
		// smolvm resolves every --allow-host on the host at create, before
		// it reserves the name, and any failure is fatal
		// (smolvm:src/cli/machine.rs:82-110, src/smolfile.rs:38-80). The
		// simulator asks no DNS: the reserved .invalid domain (RFC 2606)
		// never resolves, and with SMOLVM_SIM_HOSTS set, a name that file
		// does not hold does not either.
		unresolvable := strings.HasSuffix(strings.TrimSuffix(h, "."), ".invalid") ||
			(os.Getenv(SimHostsEnv) != "" && len(lookupSimHost(h)) == 0)
		if unresolvable {
			return fail("config operation failed: --allow-host: failed to resolve '%s': failed to lookup address information: Name or service not known", h)
		}
	}
	r.AllowCIDRs = p.values["--allow-cidr"]
	r.Network = p.bools["--net"] || len(r.AllowHosts) > 0 || len(r.AllowCIDRs) > 0
	for _, kv := range p.values["--env"] {
		if !strings.Contains(kv, "=") {
			return createSpec.usageErr("invalid value '%s' for '--env <KEY=VALUE>': expected KEY=VALUE", kv)
		}
		r.Env = append(r.Env, kv)
	}
	if w := p.one("--workdir"); w != "" {
		if !strings.HasPrefix(w, "/") {
			return fail("config operation failed: create machine: workdir must be an absolute path")
		}
		r.Workdir = w
	}
	for _, kv := range p.values["--label"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return createSpec.usageErr("invalid value '%s' for '--label <KEY=VALUE>': expected KEY=VALUE", kv)
		}
		r.Labels[k] = v
	}
	if err := applyFaults("create", name); err != nil {
		return err
	}
	if problem := nameProblem(name); problem != "" {
		return fail("config operation failed: create machine: invalid machine name '%s': %s", name, problem)
	}

	s, err := openStore()
	if err != nil {
		return err
	}
	unlock, err := s.lockGlobal(true)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Lstat(s.machineDir(name)); err == nil {
		return fail("%s", msgAlreadyExists(name))
	}
	// Build the machine in a staging dir and rename it into place, so a
	// machine directory always has its record.
	stage, err := os.MkdirTemp(filepath.Join(s.dir, "machines"), ".create-*")
	if err != nil {
		return fail("config operation failed: create machine: %v", err)
	}
	if err := writeJSONAtomic(filepath.Join(stage, "machine.json"), r); err != nil {
		_ = os.RemoveAll(stage)
		return err
	}
	if err := os.Rename(stage, s.machineDir(name)); err != nil {
		_ = os.RemoveAll(stage)
		return fail("config operation failed: create machine: %v", err)
	}
	_, _ = fmt.Fprintf(e.stdout, "Created machine: %s\n  CPUs: %d, Memory: %d MiB\n", name, r.CPUs, r.MemoryMiB)
	return nil
}

var startSpec = &cmdSpec{usage: "smolvm machine start [OPTIONS] --name <NAME>", help: "Start a machine",
	flags: []flagSpec{nameFlag, {long: "--forkable"}}}

func cmdStart(e *env, args []string) error {
	p, err := startSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	if err := applyFaults("start", name); err != nil {
		return err
	}
	s, r, unlock, err := lockedMachine(name, true)
	if err != nil {
		return err
	}
	defer unlock()
	if r.State == "running" && r.Frozen {
		return frozenStartError(s, name)
	}
	if r.State == "running" {
		_, _ = fmt.Fprintf(e.stdout, "Machine '%s' already running (PID: %d)\n", name, derefPID(r.PID))
		return nil
	}
	// smolvm says it starts before it boots (src/cli/vm_common.rs:1404),
	// and a boot failure, KVM's included, arrives wrapped as the start's
	// (vm_common.rs:1474-1476) with its hint line (src/platform/linux.rs).
	_, _ = fmt.Fprintf(e.stderr, "Starting machine '%s'...\n", name)
	// Forkable for this boot only, as smolvm's ForkLaunch (clones boot
	// from their golden's snapshot, never forkable).
	r.Forkable = p.bools["--forkable"]
	switch os.Getenv("SMOLVM_SIM_NO_KVM") {
	case "", "0", "false":
	case "permission":
		return fail("agent operation failed: start machine: %s", msgKVMPermission)
	default:
		return fail("agent operation failed: start machine: %s", msgNoKVM)
	}
	if _, err := bwrapPath(); err != nil {
		return err
	}
	if r.PulledImage == "" {
		img := "(none)"
		if r.Image != nil {
			// The first start pulls the image in the guest, on stderr
			// (vm_common.rs:1497-1520), as long as the image takes.
			img = *r.Image
			_, _ = fmt.Fprintf(e.stderr, "Pulling %s...\n", img)
			time.Sleep(pullLatency())
		}
		if err := seedRootfs(s.rootfs(name), name); err != nil {
			return fail("agent operation failed: start machine: prepare root filesystem: %v", err)
		}
		r.PulledImage = img
		r.PulledAt = time.Now().UTC().Format(time.RFC3339)
	}
	// A real process stands behind a running machine, detached like
	// smolvm's VMM; its pid is the machine's.
	pid, guestNet, err := startVMM(s.recordPath(name), name)
	if err != nil {
		return fail("agent operation failed: start machine: start VMM: %v", err)
	}
	if guestNet == guestNetNone {
		_, _ = fmt.Fprintf(e.stderr, "simulator: egress allowlist of '%s' cannot be enforced here (it needs root, ip, nft and nsenter); the machine has no network\n", name)
	}
	r.State, r.PID, r.GuestNet = "running", &pid, guestNet
	if err := s.save(r); err != nil {
		stopVMM(pid, name)
		return err
	}
	_, _ = fmt.Fprintf(e.stdout, "Machine '%s' running (PID: %d)\n", name, pid)
	return nil
}

func derefPID(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

var stopSpec = &cmdSpec{usage: "smolvm machine stop --name <NAME>", help: "Stop a machine", flags: []flagSpec{nameFlag}}

func cmdStop(e *env, args []string) error {
	p, err := stopSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	if err := applyFaults("stop", name); err != nil {
		return err
	}
	s, r, unlock, err := lockedMachine(name, true)
	if err != nil {
		return err
	}
	defer unlock()
	if r.State != "running" {
		_, _ = fmt.Fprintf(e.stdout, "Machine '%s' is not running (state: %s)\n", name, r.State)
		return nil
	}
	if r.Frozen {
		if err := frozenStopError(s, name); err != nil {
			return err
		}
	}
	_, _ = fmt.Fprintf(e.stdout, "Stopping machine '%s'...\n", name)
	if err := stopMachine(s, r); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(e.stdout, "Stopped machine: %s\n", name)
	return nil
}

// stopMachine marks the machine stopped, then ends its running execs (they
// registered under the machine lock, which the caller holds).
func stopMachine(s *store, r *record) error {
	pid := r.PID
	r.State, r.PID, r.GuestNet = "stopped", nil, ""
	r.Frozen, r.Forkable = false, false
	if err := s.save(r); err != nil {
		return err
	}
	if pid != nil {
		stopVMM(*pid, r.Name)
	}
	s.stopExecs(r.Name)
	return nil
}

var deleteSpec = &cmdSpec{
	usage: "smolvm machine delete [OPTIONS] --name <NAME>",
	help:  "Delete a machine (stops it first)",
	flags: []flagSpec{nameFlag, {long: "--force", short: "-f"}, {long: "--cascade"}},
}

func cmdDelete(e *env, args []string) error {
	p, err := deleteSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	if err := applyFaults("delete", name); err != nil {
		return err
	}
	force, cascade := p.bools["--force"], p.bools["--cascade"]
	if err := deleteDependents(e, name, force, cascade); err != nil {
		return err
	}
	return deleteMachineAsked(e, name, !force && !cascade)
}

// deleteMachine deletes one machine without asking (a cascade's clones).
func deleteMachine(e *env, name string) error { return deleteMachineAsked(e, name, false) }

func deleteMachineAsked(e *env, name string, ask bool) error {
	s, r, unlock, err := lockedMachine(name, true)
	if err != nil {
		return err
	}
	defer unlock()
	if ask {
		_, _ = fmt.Fprintf(e.stderr, "Delete machine '%s'? [y/N] ", name)
		// One short answer line: a caller piping megabytes costs nothing.
		line, _ := bufio.NewReader(io.LimitReader(e.stdin, 256)).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			_, _ = fmt.Fprintln(e.stdout, "Cancelled")
			return nil
		}
	}
	if r.State == "running" {
		if !r.Frozen {
			_, _ = fmt.Fprintf(e.stdout, "Stopping machine '%s'...\n", name)
		}
		if err := stopMachine(s, r); err != nil {
			return err
		}
	}
	gunlock, err := s.lockGlobal(true)
	if err != nil {
		return err
	}
	trash, err := os.MkdirTemp(filepath.Join(s.dir, "trash"), name+"-*")
	if err == nil {
		err = os.Rename(s.machineDir(name), filepath.Join(trash, "m"))
	}
	gunlock()
	if err != nil {
		return fail("config operation failed: delete machine: %v", err)
	}
	_, _ = fmt.Fprintf(e.stdout, "Cleaning up data directory for vm: %s\n", name)
	removeAllForce(trash)
	_, _ = fmt.Fprintf(e.stdout, "Deleted machine: %s\n", name)
	return nil
}

// removeAllForce removes a tree even where the guest left directories
// without write permission (matters when not running as root).
func removeAllForce(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// statusJSON is the object of `status --json` and `ls --json`: the keys of
// smolvm's own output (snake_case), plus labels.
type statusJSON struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	PID       *int   `json:"pid"`
	Mounts    int    `json:"mounts"`
	Ports     int    `json:"ports"`
	// CreatedAt is Unix seconds, as smolvm's record keeps it
	// (smolvm:src/config.rs:369-370).
	CreatedAt  int64             `json:"created_at"`
	StorageGB  *int              `json:"storage_gb"`
	OverlayGB  *int              `json:"overlay_gb"`
	Image      *string           `json:"image"`
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Ephemeral  bool              `json:"ephemeral"`
	Labels     map[string]string `json:"labels"`
	Network    bool              `json:"network"`

	// smolvm's keys of fork relations: started --forkable, and a held
	// fork slot not yet released. No key names a clone's golden.
	Forkable      bool `json:"forkable"`
	ForkpointHeld bool `json:"forkpoint_held"`
}

func (r *record) status() statusJSON {
	labels := r.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	var created int64
	if t, err := time.Parse(time.RFC3339, r.CreatedAt); err == nil {
		created = t.Unix()
	}
	return statusJSON{Name: r.Name, State: r.shownState(), CPUs: r.CPUs, MemoryMiB: r.MemoryMiB, PID: r.PID,
		CreatedAt: created, Image: r.Image, Entrypoint: []string{}, Cmd: []string{},
		Labels: labels, Network: r.Network, Forkable: r.Forkable, ForkpointHeld: r.ForkpointHeld}
}

var statusSpec = &cmdSpec{
	usage: "smolvm machine status [OPTIONS] --name <NAME>",
	help:  "Show a machine's status",
	flags: []flagSpec{nameFlag, {long: "--json"}},
}

func cmdStatus(e *env, args []string) error {
	p, err := statusSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	if err := applyFaults("status", name); err != nil {
		return err
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	var r *record
	if validName(name) {
		if r, err = s.load(name); err != nil {
			return err
		}
	}
	if r == nil {
		return fail("%s", msgStatusNotFound(name))
	}
	s.probe(r)
	if p.bools["--json"] {
		return printJSON(e, r.status())
	}
	if r.Frozen && r.State == "running" {
		_, _ = fmt.Fprintf(e.stdout, "Machine '%s': frozen\n", name)
	} else if r.State == "running" {
		_, _ = fmt.Fprintf(e.stdout, "Machine '%s': running (PID: %d)\n", name, derefPID(r.PID))
	} else {
		_, _ = fmt.Fprintf(e.stdout, "Machine '%s': not running\n", name)
	}
	return nil
}

var listSpec = &cmdSpec{
	usage: "smolvm machine ls [OPTIONS]",
	help:  "List machines",
	flags: []flagSpec{{long: "--json"}, {long: "--verbose", short: "-v"}},
}

func cmdList(e *env, args []string) error {
	p, err := listSpec.parse(args)
	if err != nil {
		return err
	}
	if err := applyFaults("ls", ""); err != nil {
		return err
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	unlock, err := s.lockGlobal(false)
	if err != nil {
		return err
	}
	rs, err := s.list()
	unlock()
	if err != nil {
		return err
	}
	if p.bools["--json"] {
		if len(rs) == 0 {
			_, err := fmt.Fprintln(e.stdout, "[]")
			return err
		}
		out := make([]statusJSON, len(rs))
		for i, r := range rs {
			s.probe(r)
			out[i] = r.status()
		}
		return printJSON(e, out)
	}
	if len(rs) == 0 {
		_, _ = fmt.Fprintln(e.stdout, "No machines found")
		return nil
	}
	_, _ = fmt.Fprintf(e.stdout, "%-20s %-12s %5s %10s\n", "NAME", "STATE", "CPUS", "MEMORY")
	_, _ = fmt.Fprintln(e.stdout, strings.Repeat("-", 50))
	for _, r := range rs {
		n := r.Name
		if len(n) > 18 {
			n = n[:15] + "..."
		}
		_, _ = fmt.Fprintf(e.stdout, "%-20s %-12s %5d %10s\n", n, r.shownState(), r.CPUs, fmt.Sprintf("%d MiB", r.MemoryMiB))
	}
	return nil
}

func printJSON(e *env, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail("config operation failed: serialize json: %v", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", data)
	return err
}
