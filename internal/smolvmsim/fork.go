package smolvmsim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Live fork as smolvm does it (src/cli/machine.rs ForkCmd, ForkReleaseCmd;
// src/cli/vm_common.rs fork_vm, fork_vm_batch, release_held_fork, delete_vm;
// src/agent/fork.rs prepare_forks_reusing, activate_held_fork;
// src/agent/state_probe.rs), minus the VM:
//
//   - `machine start --forkable` records that the machine may be forked.
//   - `machine fork` freezes the golden (it stays frozen until it is
//     stopped: smolvm retains its RAM checkpoint for later forks) and gives
//     the clone a copy of the golden's filesystem. smolvm clones disks
//     copy-on-write and boots the clone from the golden's RAM; here the
//     golden is frozen, so a copy taken at fork time holds exactly what a
//     copy-on-write view would, and the copy uses reflinks where the
//     filesystem has them. Processes are NOT cloned: nothing that ran in
//     the golden runs in the clone.
//   - A held slot (`--hold`) is a booted clone parked at the golden's
//     forkpoint; `machine fork-release` hands it out once.
//   - A golden with clones cannot be started, stopped or deleted without
//     --cascade (or -f, which breaks the clones, as in smolvm).

// forkRecord is what a machine's record holds about forks (the fields of
// smolvm's VmRecord of the same meaning).
type forkRecord struct {
	// Forkable: started with --forkable (clones are never forkable).
	Forkable bool `json:"forkable,omitempty"`
	// Frozen: a fork froze this golden; it stays frozen until stopped.
	Frozen bool `json:"frozen,omitempty"`
	// Golden names the machine this one was forked from.
	Golden string `json:"golden,omitempty"`
	// ForkpointHeld: a held slot not yet released.
	ForkpointHeld bool `json:"forkpoint_held,omitempty"`
	// ForkEnv is the fork parameters (KEY=VALUE), as delivered in
	// /etc/smolvm/fork-env.
	ForkEnv []string `json:"fork_env,omitempty"`
	// SecretRefs maps a guest variable to the host variable every exec in
	// the clone resolves it from (fork --secret-env); values are never
	// stored.
	SecretRefs map[string]string `json:"secret_refs,omitempty"`
}

// Guest paths of smolvm's forkpoint protocol (crates/smolvm-protocol/src/forkpoint.rs).
const (
	forkpointDir     = "/run/smolvm/forkpoint"
	forkpointReady   = forkpointDir + "/ready"
	forkpointRelease = forkpointDir + "/release"
	forkEnvPath      = "/etc/smolvm/fork-env"
	// forkReadyName is the guest command a workload runs to mark the
	// forkpoint (smolvm installs it as /usr/local/bin/smolvm-fork-ready);
	// the simulator binary answers to it.
	forkReadyName = "smolvm-fork-ready"
	readyVersion  = "smolvm-forkpoint-v1"
)

// maxForkCount is smolvm's cap on one batch.
const maxForkCount = 1024

// defaultReadyTimeout is fork's --ready-timeout default.
const defaultReadyTimeout = 10 * time.Minute

var forkSpec = &cmdSpec{
	usage: "smolvm machine fork [OPTIONS] --golden <NAME>",
	help:  "Fork a running forkable machine into a new clone (CoW memory + disks)",
	flags: []flagSpec{
		{long: "--golden", meta: "<NAME>", required: true},
		{long: "--name", short: "-n", meta: "<NAME>"},
		{long: "--count", meta: "<COUNT>"},
		{long: "--name-prefix", meta: "<PREFIX>"},
		{long: "--wait-ready"},
		{long: "--hold"},
		{long: "--ready-timeout", meta: "<DURATION>"},
		{long: "--env", short: "-e", meta: "<KEY=VALUE>", multi: true},
		{long: "--secret-env", meta: "<GUEST_VAR=HOST_VAR>", multi: true},
	},
}

var forkReleaseSpec = &cmdSpec{
	usage: "smolvm machine fork-release [OPTIONS] --name <NAME>",
	help:  "Assign parameters and release one held fork-pool slot",
	flags: []flagSpec{
		{long: "--name", short: "-n", meta: "<NAME>", required: true},
		{long: "--env", short: "-e", meta: "<KEY=VALUE>", multi: true},
	},
}

func configErr(op, format string, args ...any) error {
	return fail("config operation failed: %s: %s", op, fmt.Sprintf(format, args...))
}

func agentErr(op, format string, args ...any) error {
	return fail("agent operation failed: %s: %s", op, fmt.Sprintf(format, args...))
}

// parseEnvList is smolvm's parse_env_list: entries without '=' or with an
// empty key are dropped silently.
func parseEnvList(specs []string) []string {
	var out []string
	for _, kv := range specs {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			out = append(out, kv)
		}
	}
	return out
}

// validateForkEnv is smolvm's validate_fork_env.
func validateForkEnv(env []string) error {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		ok := k != "" && (k[0] == '_' || k[0] >= 'A' && k[0] <= 'Z' || k[0] >= 'a' && k[0] <= 'z')
		for i := 1; ok && i < len(k); i++ {
			c := k[i]
			ok = c == '_' || isAlnum(c)
		}
		if !ok {
			return configErr("fork env", "invalid key '%s': must match [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return configErr("fork env", "value for '%s' must not contain newlines", k)
		}
	}
	return nil
}

// parseSecretRefs is smolvm's parse_cli_secret_refs for --secret-env.
func parseSecretRefs(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, spec := range specs {
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, configErr("--secret-env", "expected KEY=VALUE, got '%s'", spec)
		}
		if k == "" {
			return nil, configErr("--secret-env", "empty secret name in '%s'", spec)
		}
		if _, dup := out[k]; dup {
			return nil, configErr("--secret-env", "secret '%s' specified more than once", k)
		}
		out[k] = v
	}
	return out, nil
}

func cmdFork(e *env, args []string) error {
	p, err := forkSpec.parse(args)
	if err != nil {
		return err
	}
	golden := p.one("--golden")
	secrets, err := parseSecretRefs(p.values["--secret-env"])
	if err != nil {
		return err
	}
	count := 1
	if p.has("--count") {
		if count, err = parseUint(forkSpec, "--count <COUNT>", p.one("--count"), 32); err != nil {
			return err
		}
		if count == 0 {
			return forkSpec.usageErr("invalid value '0' for '--count <COUNT>': number would be zero for non-zero type")
		}
	}
	readyTimeout := defaultReadyTimeout
	if p.has("--ready-timeout") {
		if readyTimeout, err = time.ParseDuration(p.one("--ready-timeout")); err != nil || readyTimeout <= 0 {
			return forkSpec.usageErr("invalid value '%s' for '--ready-timeout <DURATION>'", p.one("--ready-timeout"))
		}
	}
	hold := p.bools["--hold"]
	// forkpoint_timeout: a batch, --wait-ready or --hold waits for the
	// golden's forkpoint.
	waitReady := count > 1 || p.bools["--wait-ready"] || hold
	if count > maxForkCount {
		return configErr("fork", "--count cannot exceed 1024 clones per batch")
	}
	env := parseEnvList(p.values["--env"])
	var clones []string
	if count == 1 {
		switch name, prefix := p.one("--name"), p.one("--name-prefix"); {
		case p.has("--name") && !p.has("--name-prefix"):
			clones = []string{name}
		case !p.has("--name") && p.has("--name-prefix"):
			clones = []string{prefix + "-0"}
		case p.has("--name"):
			return configErr("fork", "use either --name or --name-prefix, not both")
		default:
			return configErr("fork", "--name is required for one clone; use --name-prefix with --count for a batch")
		}
	} else {
		if p.has("--name") {
			return configErr("fork", "--name cannot be used with --count greater than 1; use --name-prefix")
		}
		if !p.has("--name-prefix") {
			return configErr("fork", "--name-prefix is required with --count greater than 1")
		}
		for i := 0; i < count; i++ {
			clones = append(clones, p.one("--name-prefix")+"-"+strconv.Itoa(i))
		}
	}
	// One latency/fault per invocation, named for the first clone.
	if err := applyFaults("fork", clones[0]); err != nil {
		return err
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	if waitReady {
		_, _ = fmt.Fprintf(e.stderr, "Waiting for golden '%s' to reach its forkpoint...\n", golden)
		if err := waitForForkpoint(s, golden, readyTimeout); err != nil {
			return err
		}
	}
	_, _ = fmt.Fprintf(e.stderr, "Freezing golden '%s' as fork base...\n", golden)
	envs := make([][]string, len(clones))
	batchID := ""
	if count > 1 && !hold {
		batchID = fmt.Sprintf("%032x", time.Now().UnixNano())
	}
	for i, c := range clones {
		envs[i] = indexedForkEnv(env, i, c, count > 1, batchID, count)
	}
	if err := forkClones(e, s, golden, clones, envs, secrets, hold); err != nil {
		return err
	}
	switch {
	case count > 1 && hold:
		_, _ = fmt.Fprintf(e.stderr, "Provisioned %d held slots from '%s' with one snapshot.\n", count, golden)
	case count > 1:
		_, _ = fmt.Fprintf(e.stderr, "Forked %d clones from '%s' with one snapshot.\n", count, golden)
	case hold:
		_, _ = fmt.Fprintf(e.stderr, "Forked '%s' -> held slot '%s'. Release it with `smolvm machine fork-release --name %s`.\n",
			golden, clones[0], clones[0])
	default:
		_, _ = fmt.Fprintf(e.stderr, "Forked '%s' -> '%s'. Golden stays frozen as the fork base (do not start it again while clones exist).\n",
			golden, clones[0])
	}
	return nil
}

// waitForForkpoint is smolvm's wait_for_forkpoint: a frozen golden is past
// its forkpoint already; a running one must have published the ready marker
// (smolvm-fork-ready) within the timeout.
func waitForForkpoint(s *store, golden string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var r *record
		var err error
		if validName(golden) {
			r, err = s.load(golden)
		}
		if err != nil {
			return err
		}
		if r == nil || r.State != "running" {
			return agentErr("wait for forkpoint", "agent connect: machine '%s' is not running", golden)
		}
		if r.Frozen {
			return nil
		}
		if _, err := os.Stat(filepath.Join(s.rootfs(golden), forkpointReady)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return agentErr("wait for forkpoint", "golden '%s' did not become ready within %gs: timed out", golden, timeout.Seconds())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forkClones prepares every clone from the golden and boots it; if any
// fails, every clone of this call is removed (smolvm's prepare is
// transactional and a failed boot tears its clones down).
func forkClones(e *env, s *store, golden string, clones []string, envs [][]string, secrets map[string]string, hold bool) error {
	seen := map[string]bool{}
	for i, c := range clones {
		if problem := nameProblem(c); problem != "" {
			return configErr("clone name", "%s", strings.Replace(problem, "name", "clone name", 1))
		}
		if err := validateForkEnv(envs[i]); err != nil {
			return err
		}
		if seen[c] {
			return configErr("fork", "duplicate clone name '%s'", c)
		}
		seen[c] = true
	}
	gs, g, unlock, err := lockedMachine(golden, true)
	if err != nil {
		return err
	}
	defer unlock()
	for _, c := range clones {
		if r, err := gs.load(c); err != nil {
			return err
		} else if r != nil {
			return agentErr("fork", "machine '%s' already exists", c)
		}
	}
	if g.State != "running" || !g.Forkable {
		return agentErr("fork", "golden '%s' is not running forkable; start it with `machine start --forkable --name %s`", golden, golden)
	}
	var made []string
	undo := func() {
		for _, c := range made {
			removeClone(s, c)
		}
	}
	for i, c := range clones {
		if err := prepareClone(s, g, c, envs[i], secrets, hold); err != nil {
			undo()
			return err
		}
		made = append(made, c)
	}
	g.Frozen = true
	if err := s.save(g); err != nil {
		undo()
		return err
	}
	for i, c := range clones {
		_, _ = fmt.Fprintf(e.stderr, "Booting clone '%s' from snapshot...\n", c)
		if err := bootClone(s, c, envs[i]); err != nil {
			undo()
			return err
		}
	}
	return nil
}

// prepareClone registers the clone: the golden's record (labels, env,
// image, resources) under the new name, and a copy of its filesystem.
func prepareClone(s *store, g *record, clone string, env []string, secrets map[string]string, hold bool) error {
	c := *g
	c.Name, c.State, c.PID = clone, "stopped", nil
	c.CreatedAt = time.Now().UTC().Format(time.RFC3339)
	c.Labels = copyMap(g.Labels)
	c.Env = mergeEnv(g.Env, env)
	c.forkRecord = forkRecord{Golden: g.Name, ForkpointHeld: hold, ForkEnv: env, SecretRefs: copyMap(g.SecretRefs)}
	for k, v := range secrets {
		if c.SecretRefs == nil {
			c.SecretRefs = map[string]string{}
		}
		c.SecretRefs[k] = v
	}
	unlock, err := s.lockGlobal(true)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Lstat(s.machineDir(clone)); err == nil {
		return agentErr("fork", "machine '%s' already exists", clone)
	}
	stage, err := os.MkdirTemp(filepath.Join(s.dir, "machines"), ".fork-*")
	if err != nil {
		return agentErr("create clone dir", "%v", err)
	}
	if _, err := os.Stat(s.rootfs(g.Name)); err == nil {
		if err := cloneTree(s.rootfs(g.Name), filepath.Join(stage, "rootfs")); err != nil {
			_ = os.RemoveAll(stage)
			return agentErr("clone disk", "%s: %v", s.rootfs(g.Name), err)
		}
	}
	if err := writeJSONAtomic(filepath.Join(stage, "machine.json"), &c); err != nil {
		_ = os.RemoveAll(stage)
		return err
	}
	if err := os.Rename(stage, s.machineDir(clone)); err != nil {
		_ = os.RemoveAll(stage)
		return agentErr("create clone dir", "%v", err)
	}
	return nil
}

// bootClone starts the clone's VMM and delivers its fork parameters.
func bootClone(s *store, clone string, env []string) error {
	unlock, err := s.lockMachine(clone, true)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.load(clone)
	if err != nil {
		return err
	}
	if r == nil {
		return fail("%s", msgVMNotFound(clone))
	}
	if len(env) > 0 {
		if err := writeGuestFile(s.rootfs(clone), forkEnvPath, renderForkEnv(env), 0o600); err != nil {
			return agentErr("fork env", "write: %v", err)
		}
	}
	pid, guestNet, err := startVMM(s.recordPath(clone), clone)
	if err != nil {
		return agentErr("batch fork boot", "clone '%s': start VMM: %v", clone, err)
	}
	r.State, r.PID, r.GuestNet = "running", &pid, guestNet
	if err := s.save(r); err != nil {
		stopVMM(pid, clone)
		return err
	}
	return nil
}

// removeClone tears a clone down (smolvm's teardown_fork_clone).
func removeClone(s *store, clone string) {
	if r, _ := s.load(clone); r != nil && r.PID != nil {
		stopVMM(*r.PID, clone)
	}
	removeAllForce(s.machineDir(clone))
}

// indexedForkEnv is smolvm's render_indexed_fork_env: {index} and {name}
// in values name the clone; a batch's clones also learn their index and
// name, and an unheld batch its id and size.
func indexedForkEnv(specs []string, index int, name string, identity bool, batchID string, size int) []string {
	var out []string
	for _, kv := range specs {
		k, v, _ := strings.Cut(kv, "=")
		if identity && (k == "SMOLVM_FORK_INDEX" || k == "SMOLVM_FORK_NAME" || k == "SMOLVM_FORK_BATCH_ID" || k == "SMOLVM_FORK_BATCH_SIZE") {
			continue
		}
		v = strings.ReplaceAll(strings.ReplaceAll(v, "{index}", strconv.Itoa(index)), "{name}", name)
		out = append(out, k+"="+v)
	}
	if identity {
		out = append(out, "SMOLVM_FORK_INDEX="+strconv.Itoa(index), "SMOLVM_FORK_NAME="+name)
		if batchID != "" {
			out = append(out, "SMOLVM_FORK_BATCH_ID="+batchID, "SMOLVM_FORK_BATCH_SIZE="+strconv.Itoa(size))
		}
	}
	return out
}

func renderForkEnv(env []string) string {
	var b strings.Builder
	for _, kv := range env {
		b.WriteString(kv + "\n")
	}
	return b.String()
}

// mergeForkEnv is smolvm's merge_fork_env: later keys replace earlier ones,
// which keep their order; a replaced key moves to the end.
func mergeForkEnv(initial, assignment []string) []string {
	out := append([]string(nil), initial...)
	for _, kv := range assignment {
		k, _, _ := strings.Cut(kv, "=")
		kept := out[:0]
		for _, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok != k {
				kept = append(kept, old)
			}
		}
		out = append(kept, kv)
	}
	return out
}

func cmdForkRelease(e *env, args []string) error {
	p, err := forkReleaseSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	assignment := parseEnvList(p.values["--env"])
	if err := applyFaults("fork-release", name); err != nil {
		return err
	}
	s, r, unlock, err := lockedMachine(name, true)
	if err != nil {
		return err
	}
	defer unlock()
	if r.Golden == "" {
		return agentErr("release held fork", "machine '%s' is not a fork clone", name)
	}
	if !r.ForkpointHeld {
		return agentErr("release held fork", "clone '%s' is not a held pool slot", name)
	}
	if err := validateForkEnv(assignment); err != nil {
		return err
	}
	merged := mergeForkEnv(r.ForkEnv, assignment)
	// The claim is recorded first: a slot whose activation fails is never
	// handed out again.
	r.ForkpointHeld = false
	r.ForkEnv = merged
	r.Env = mergeEnv(r.Env, assignment)
	if err := s.save(r); err != nil {
		return err
	}
	if err := activateHeldFork(s, r, merged); err != nil {
		return agentErr("release held fork", "slot '%s' was claimed and will not be reused after activation failed: %v", name, err)
	}
	_, _ = fmt.Fprintf(e.stderr, "Released held slot '%s'. Replace it from '%s' after the workload completes.\n", name, r.Golden)
	return nil
}

// activateHeldFork is what smolvm's activation script does in the guest:
// only a clone parked at a forkpoint can be released.
func activateHeldFork(s *store, r *record, env []string) error {
	if r.State != "running" {
		return fmt.Errorf("agent operation failed: activate held fork: agent connect: machine '%s' is not running", r.Name)
	}
	root := s.rootfs(r.Name)
	if _, err := os.Stat(filepath.Join(root, forkpointRelease)); err == nil {
		return fmt.Errorf("agent operation failed: activate held fork: clone '%s' was already released", r.Name)
	}
	if _, err := os.Stat(filepath.Join(root, forkpointReady)); err != nil {
		return fmt.Errorf("agent operation failed: activate held fork: clone '%s' is not parked at a forkpoint", r.Name)
	}
	if err := writeGuestFile(root, forkEnvPath, renderForkEnv(env), 0o600); err != nil {
		return fmt.Errorf("agent operation failed: activate held fork: %v", err)
	}
	if err := writeGuestFile(root, forkpointRelease, "smolvm-forkpoint-release-v1\n", 0o644); err != nil {
		return fmt.Errorf("agent operation failed: activate held fork: %v", err)
	}
	return nil
}

// writeGuestFile writes a file at a guest path of a machine's rootfs,
// through a temporary name (the machine's private directories hold it).
func writeGuestFile(root, guestPath, content string, mode os.FileMode) error {
	p := filepath.Join(root, guestPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// dependentClones lists the machines forked from name, sorted.
func dependentClones(s *store, name string) ([]string, error) {
	rs, err := s.list()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rs {
		if r.Golden == name {
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// frozenStartError is start's refusal on a frozen golden.
func frozenStartError(s *store, name string) error {
	clones, _ := dependentClones(s, name)
	reason := "it retains a reusable fork checkpoint; stop it before restarting, or fork it again"
	if len(clones) > 0 {
		reason = fmt.Sprintf("it is the fork base for %d live clone(s) (%s); their disks are copy-on-write overlays backed by its disks, so it cannot be re-launched while they exist — delete the clones first",
			len(clones), strings.Join(clones, ", "))
	}
	return agentErr("start", "'%s' is frozen because %s", name, reason)
}

// frozenStopError is stop's refusal on a golden with live clones (nil when
// it has none: a frozen golden without clones stops).
func frozenStopError(s *store, name string) error {
	clones, err := dependentClones(s, name)
	if err != nil || len(clones) == 0 {
		return err
	}
	return agentErr("stop", "machine '%s' is the fork base for %d live clone(s) (%s); stop or delete the clones first",
		name, len(clones), strings.Join(clones, ", "))
}

// deleteDependents is delete's guard for a golden: with --cascade its
// clones are deleted first; without -f it refuses; with -f (and no
// --cascade) the clones are left broken, as smolvm leaves their overlays
// dangling. It runs before delete's confirmation prompt, as in smolvm, and
// before the golden's own lock is taken: each clone is deleted under its own.
func deleteDependents(e *env, name string, force, cascade bool) error {
	s, err := openStore()
	if err != nil || !validName(name) {
		return err
	}
	if r, err := s.load(name); err != nil || r == nil {
		return err // a missing machine is delete's own "vm not found"
	}
	clones, err := dependentClones(s, name)
	if err != nil || len(clones) == 0 {
		return err
	}
	switch {
	case cascade:
		for _, c := range clones {
			_, _ = fmt.Fprintf(e.stdout, "Deleting dependent clone '%s' (cascade)...\n", c)
			if err := deleteMachine(e, c); err != nil {
				return err
			}
		}
		return nil
	case !force:
		return agentErr("delete", "machine '%s' is the fork base for %d clone(s) (%s); delete the clones first, use --cascade to remove them too, or --force to break them",
			name, len(clones), strings.Join(clones, ", "))
	}
	// -f: the clones keep running on what they have, as a clone's VMM
	// keeps its open disks; smolvm could not boot them again.
	return nil
}

// secretRefEnv resolves a clone's secret refs from this exec's environment
// (smolvm resolves them afresh at every exec; values are never stored).
func secretRefEnv(r *record) ([]string, error) {
	keys := make([]string, 0, len(r.SecretRefs))
	for k := range r.SecretRefs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		v, ok := os.LookupEnv(r.SecretRefs[k])
		if !ok {
			return nil, fail("secret env %s: host environment variable %s is not set", k, r.SecretRefs[k])
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}

// shownState is the state smolvm reports: a running golden a fork froze is
// "frozen" (state_probe.rs resolve_state).
func (r *record) shownState() string {
	if r.State == "running" && r.Frozen {
		return "frozen"
	}
	return r.State
}

// forkReadyMain is the guest's smolvm-fork-ready helper: it publishes the
// ready marker and blocks until the machine is released as a clone (the
// simulator's processes are not cloned, so in practice until it is killed;
// the marker stays, as when smolvm's helper is killed).
func forkReadyMain() int {
	if err := os.MkdirAll(forkpointDir, 0o1777); err != nil {
		fmt.Fprintf(os.Stderr, "smolvm-fork-ready: create %s: %v\n", forkpointDir, err)
		return 1
	}
	_ = os.Remove(forkpointRelease)
	tmp := filepath.Join(forkpointDir, ".ready."+strconv.Itoa(os.Getpid())+".tmp")
	if err := os.WriteFile(tmp, []byte(readyVersion+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "smolvm-fork-ready: create %s: %v\n", tmp, err)
		return 1
	}
	if err := os.Rename(tmp, forkpointReady); err != nil {
		_ = os.Remove(tmp)
		fmt.Fprintf(os.Stderr, "smolvm-fork-ready: publish %s as %s: %v\n", tmp, forkpointReady, err)
		return 1
	}
	fmt.Println("smolvm forkpoint ready; waiting for clone release")
	for {
		if _, err := os.Stat(forkpointRelease); err == nil {
			_ = os.Remove(forkpointReady)
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cloneTree copies a machine's filesystem for a clone: directories,
// symlinks and regular files with their mode and (as root) owner, file data
// by reflink (FICLONE) where the filesystem supports it, as
// `cp --reflink=auto -a` does.
func cloneTree(src, dst string) error {
	// Directories get their mode last: a read-only one must still take
	// its entries.
	type dir struct {
		path string
		fi   os.FileInfo
	}
	var dirs []dir
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dir{target, fi})
			return nil
		case fi.Mode().IsRegular():
			if err := cloneFile(p, target, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil // sockets, fifos: not part of a disk image here
		}
		return keepOwnerAndMode(target, fi)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := keepOwnerAndMode(dirs[i].path, dirs[i].fi); err != nil {
			return err
		}
	}
	return nil
}

func keepOwnerAndMode(target string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && hostIsRoot() {
		if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil
	}
	// Chmod after chown: chown clears setuid/setgid bits.
	mode := fi.Mode().Perm() | fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	return os.Chmod(target, mode)
}

// cloneFile shares src's blocks with dst where the filesystem can
// (FICLONE), and copies them otherwise.
func cloneFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if cerr := ioctlFileClone(out, in); cerr == nil {
		return out.Close()
	}
	if _, err := out.ReadFrom(in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// ficlone is FICLONE from linux/fs.h.
const ficlone = 0x40049409

func ioctlFileClone(dst, src *os.File) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, dst.Fd(), ficlone, src.Fd())
	if errno != 0 {
		return errors.New(errno.Error())
	}
	return nil
}
