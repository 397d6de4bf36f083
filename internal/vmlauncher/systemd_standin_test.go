package vmlauncher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"
)

// The stand-in for systemd (PID 1) on a private bus: the part of its D-Bus
// API (org.freedesktop.systemd1(5)) that the launcher calls, with systemd's
// method signatures, property types and errors, taken from systemd's
// sources (src/core/dbus-manager.c, dbus-unit.c, dbus-service.c,
// dbus-execute.c, dbus-cgroup.c, dbus-kill.c, job.c). It records every call
// as it came off the bus and really runs a unit's ExecStart. It is no
// systemd: no cgroup, no tracking of the process a Type=forking command
// leaves behind (a started unit stays active until StopUnit), no KillMode
// (StopUnit kills only a command still running), no dependencies.
const (
	sdBusName   = systemdBusName
	sdPath      = dbus.ObjectPath("/org/freedesktop/systemd1")
	sdInterface = "org.freedesktop.systemd1.Manager"

	errInvalidArgs    = "org.freedesktop.DBus.Error.InvalidArgs"
	errPropertyRO     = "org.freedesktop.DBus.Error.PropertyReadOnly"
	errUnitExists     = "org.freedesktop.systemd1.UnitExists"
	errNoSuchUnit     = "org.freedesktop.systemd1.NoSuchUnit"
	errBadUnitSetting = "org.freedesktop.systemd1.BadUnitSetting"

	// unitPATH is the only environment PID 1 gives a system service
	// besides its Environment= (and a few variables of its own).
	unitPATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
)

// Method signatures, as sd-bus checks them before a handler runs.
var sdSignatures = map[string]string{
	"StartTransientUnit": "ssa(sv)a(sa(sv))",
	"StopUnit":           "ss",
	"ResetFailedUnit":    "s",
}

// sdTransient lists the transient-unit properties the stand-in knows, each
// with the D-Bus type systemd reads for it. systemd knows many more; the
// stand-in answers an unknown name as systemd does, so a property the
// launcher starts sending must be taught here first.
var sdTransient = map[string]string{
	"Description":        "s",       // dbus-unit.c
	"CollectMode":        "s",       // dbus-unit.c
	"Type":               "s",       // dbus-service.c
	"ExecStart":          "a(sasb)", // dbus-execute.c bus_set_transient_exec_command
	"Environment":        "as",      // dbus-execute.c
	"MemoryMax":          "t",       // dbus-cgroup.c
	"CPUQuotaPerSecUSec": "t",       // dbus-cgroup.c
	"KillMode":           "s",       // dbus-kill.c
	"TimeoutStartUSec":   "t",       // dbus-service.c
}

var sdEnums = map[string][]string{
	"Type":        {"simple", "exec", "forking", "oneshot", "dbus", "notify", "notify-reload", "idle"},
	"KillMode":    {"control-group", "process", "mixed", "none"},
	"CollectMode": {"inactive", "inactive-or-failed"},
}

var sdJobModes = []string{"fail", "replace", "replace-irreversibly", "isolate", "flush",
	"ignore-dependencies", "ignore-requirements", "triggering", "restart-dependencies", "lenient"}

// sdExec is one (sasb) of ExecStart: path, argv (argv[0] included) and
// systemd's ignore-failure flag ("ExecStart=-…"). go-systemd and the man
// page describe that flag as "a failure if the process exits uncleanly";
// dbus-execute.c reads it as EXEC_COMMAND_IGNORE_FAILURE.
type sdExec struct {
	Path          string
	Argv          []string
	IgnoreFailure bool
}

// sdProp is a property as it came off the bus: its name, the D-Bus type of
// its variant and its value (ExecStart decoded into []sdExec).
type sdProp struct {
	Name      string
	Signature string
	Value     any
}

// sdCall is one method call the stand-in received.
type sdCall struct {
	Member    string
	Signature string // of the body
	Unit      string
	Mode      string
	Props     []sdProp
	Aux       int
	Err       string // the D-Bus error name answered, "" for success
}

// sdUnit is a loaded unit.
type sdUnit struct {
	state   string // activating, active, failed, inactive
	collect string
	// startTimeout is the unit's TimeoutStartSec when it set one.
	startTimeout time.Duration
	journal      string    // the unit's stdout and stderr
	cmd          *exec.Cmd // ExecStart while it runs
}

type standIn struct {
	conn *dbus.Conn
	dir  string

	// StartTimeout is the TimeoutStartSec of units that set none
	// (systemd's default is 90s): a command still running then is killed
	// and the unit fails.
	StartTimeout time.Duration
	// JobTimeout is JobTimeoutSec (systemd's default: none): the start job
	// ends with "timeout" and the command runs on.
	JobTimeout time.Duration
	// StopResult, when set, ends every stop job with it.
	StopResult string
	// OnStartCall runs in StartTransientUnit before systemd answers it;
	// OnStartJob runs when a start job begins, after the answer or not.
	OnStartCall, OnStartJob func(unit string)

	done  chan struct{} // closed when the test ends
	mu    sync.Mutex
	calls []sdCall
	units map[string]*sdUnit
	jobs  uint32
	wg    sync.WaitGroup
}

// serveSystemd connects a stand-in to the bus at socket, owning systemd's
// name as PID 1 does. configure sets its knobs before it serves: they are
// not locked.
func serveSystemd(t *testing.T, socket string, configure ...func(*standIn)) *standIn {
	t.Helper()
	conn, err := dial(t.Context(), socket)
	if err != nil {
		t.Fatalf("stand-in systemd: connect: %v", err)
	}
	s := &standIn{conn: conn, dir: t.TempDir(), StartTimeout: 90 * time.Second, units: map[string]*sdUnit{},
		done: make(chan struct{})}
	t.Cleanup(s.close)
	for _, c := range configure {
		c(s)
	}
	if err := conn.Export(sdManager{s}, sdPath, sdInterface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(sdBusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("stand-in systemd: own %s: %v (reply %d)", sdBusName, err, reply)
	}
	return s
}

// close kills the commands still running and waits for every job.
func (s *standIn) close() {
	close(s.done)
	s.wg.Wait()
	_ = s.conn.Close()
}

// Calls returns the calls received so far.
func (s *standIn) Calls() []sdCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sdCall(nil), s.calls...)
}

// Members returns the calls' method names and errors, "Member" or
// "Member: error", in order.
func (s *standIn) Members() []string {
	var out []string
	for _, c := range s.Calls() {
		if c.Err != "" {
			out = append(out, c.Member+": "+c.Err)
		} else {
			out = append(out, c.Member)
		}
	}
	return out
}

// UnitState is the unit's state, "" when it is not loaded.
func (s *standIn) UnitState(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.units[name]; u != nil {
		return u.state
	}
	return ""
}

// Journal is what the unit's commands wrote (journalctl -u).
func (s *standIn) Journal(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name+".journal"))
	return string(b)
}

// LeaveUnit loads a unit as an earlier start would have left it.
func (s *standIn) LeaveUnit(name, state, collect string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[name] = &sdUnit{state: state, collect: collect, journal: filepath.Join(s.dir, name+".journal")}
}

func (s *standIn) record(c sdCall, err *dbus.Error) *dbus.Error {
	if err != nil {
		c.Err = err.Name
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return err
}

func sdErr(name, format string, a ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, a...)})
}

func bodySignature(msg dbus.Message) string {
	if v, ok := msg.Headers[dbus.FieldSignature]; ok {
		if sig, ok := v.Value().(dbus.Signature); ok {
			return sig.String()
		}
	}
	return ""
}

func checkCall(msg dbus.Message, member string) *dbus.Error {
	if got, want := bodySignature(msg), sdSignatures[member]; got != want {
		return sdErr(errInvalidArgs, "Invalid arguments '%s' to call %s.%s(), expecting '%s'.", got, sdInterface, member, want)
	}
	return nil
}

func checkJobMode(mode string) *dbus.Error {
	for _, m := range sdJobModes {
		if m == mode {
			return nil
		}
	}
	return sdErr(errInvalidArgs, "Job mode %s invalid.", mode)
}

// checkServiceName is unit_name_is_valid for the one unit type modelled.
func checkServiceName(name string) *dbus.Error {
	prefix, ok := strings.CutSuffix(name, ".service")
	valid := ok && prefix != "" && len(name) <= 255
	for _, r := range prefix {
		if !asciiAlnum(r) && !strings.ContainsRune(":-_.\\", r) {
			valid = false
		}
	}
	if !valid {
		return sdErr(errInvalidArgs, "Unit name %s is not valid.", name)
	}
	return nil
}

func asciiAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// sdManager is what the bus sees: exactly the methods the launcher calls.
// Any other method gets godbus's UnknownMethod, which fails the launch.
type sdManager struct{ s *standIn }

type sdWireProp struct {
	Name  string
	Value dbus.Variant
}

type sdWireAux struct {
	Name  string
	Props []sdWireProp
}

func (m sdManager) StartTransientUnit(msg dbus.Message, name, mode string, props []sdWireProp, aux []sdWireAux) (dbus.ObjectPath, *dbus.Error) {
	s := m.s
	c := sdCall{Member: "StartTransientUnit", Signature: bodySignature(msg), Unit: name, Mode: mode, Aux: len(aux)}
	for _, p := range props {
		rp := sdProp{Name: p.Name, Signature: p.Value.Signature().String(), Value: p.Value.Value()}
		if p.Name == "ExecStart" && rp.Signature == sdTransient["ExecStart"] {
			var cmds []sdExec
			if err := dbus.Store([]any{p.Value.Value()}, &cmds); err == nil {
				rp.Value = cmds
			}
		}
		c.Props = append(c.Props, rp)
	}
	if err := checkCall(msg, c.Member); err != nil {
		return "", s.record(c, err)
	}
	if err := checkServiceName(name); err != nil {
		return "", s.record(c, err)
	}
	if err := checkJobMode(mode); err != nil {
		return "", s.record(c, err)
	}
	if len(aux) > 0 {
		return "", s.record(c, sdErr(errInvalidArgs, "the stand-in models no auxiliary units"))
	}
	// systemd loads the unit first: a name in use is refused before any
	// property is looked at (transient_unit_from_message).
	s.mu.Lock()
	exists := s.units[name] != nil
	s.mu.Unlock()
	if exists {
		return "", s.record(c, sdErr(errUnitExists, "Unit %s was already loaded or has a fragment file.", name))
	}
	u := &sdUnit{state: "activating", collect: "inactive", journal: filepath.Join(s.dir, name+".journal")}
	var cmds []sdExec
	var env []string
	for _, p := range c.Props {
		want, known := sdTransient[p.Name]
		if !known {
			return "", s.record(c, sdErr(errPropertyRO, "Cannot set property %s, or unknown property.", p.Name))
		}
		if p.Signature != want {
			return "", s.record(c, sdErr(errInvalidArgs, "Property %s: expected type %s, got %s.", p.Name, want, p.Signature))
		}
		if err := checkValue(p); err != nil {
			return "", s.record(c, err)
		}
		switch p.Name {
		case "ExecStart":
			cmds = append(cmds, p.Value.([]sdExec)...)
		case "Environment":
			env = append(env, p.Value.([]string)...)
		case "CollectMode":
			u.collect = p.Value.(string)
		case "TimeoutStartUSec":
			u.startTimeout = time.Duration(p.Value.(uint64)) * time.Microsecond
		}
	}
	typ := "simple"
	for _, p := range c.Props {
		if p.Name == "Type" {
			typ = p.Value.(string)
		}
	}
	switch {
	case len(cmds) == 0:
		return "", s.record(c, sdErr(errBadUnitSetting, "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."))
	case len(cmds) > 1 && typ != "oneshot":
		return "", s.record(c, sdErr(errBadUnitSetting, "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."))
	}

	s.mu.Lock()
	s.units[name] = u
	s.jobs++
	id := s.jobs
	s.wg.Add(1)
	s.mu.Unlock()
	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	go s.runStart(id, job, name, u, cmds[0], env)
	if s.OnStartCall != nil {
		s.OnStartCall(name)
	}
	return job, s.record(c, nil)
}

// checkValue applies systemd's own checks of a property's value.
func checkValue(p sdProp) *dbus.Error {
	switch p.Name {
	case "Type", "KillMode", "CollectMode":
		for _, v := range sdEnums[p.Name] {
			if v == p.Value {
				return nil
			}
		}
		return sdErr(errInvalidArgs, "Invalid %s setting: %v", p.Name, p.Value)
	case "ExecStart":
		cmds, ok := p.Value.([]sdExec)
		if !ok {
			return sdErr(errInvalidArgs, "ExecStart: not a(sasb)")
		}
		for _, c := range cmds {
			if c.Path == "" || !filepath.IsAbs(c.Path) && strings.Contains(c.Path, "/") {
				return sdErr(errInvalidArgs, "\"%s\" is neither a valid executable name nor an absolute path", c.Path)
			}
			if len(c.Argv) == 0 {
				return sdErr(errInvalidArgs, "\"%s\" argv cannot be empty", p.Name)
			}
		}
	case "Environment":
		for _, e := range p.Value.([]string) {
			if !envAssignmentValid(e) {
				return sdErr(errInvalidArgs, "Invalid environment block.")
			}
		}
	case "MemoryMax":
		if p.Value.(uint64) == 0 {
			return sdErr(errInvalidArgs, "%s= is too small", p.Name)
		}
	case "CPUQuotaPerSecUSec":
		if p.Value.(uint64) == 0 {
			return sdErr(errInvalidArgs, "CPUQuotaPerSecUSec= value out of range")
		}
	}
	return nil
}

// envAssignmentValid is systemd's env_assignment_is_valid: a name of
// [A-Za-z0-9_] not starting with a digit, and a UTF-8 value without
// control characters other than tab and newline.
func envAssignmentValid(e string) bool {
	name, value, ok := strings.Cut(e, "=")
	if !ok || name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if !asciiAlnum(r) && r != '_' {
			return false
		}
	}
	if !utf8.ValidString(value) {
		return false
	}
	for _, r := range value {
		if r < ' ' && r != '\t' && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

// runStart is the start job of a Type=forking service: it runs ExecStart
// and ends when the command exits (0, or anything with the ignore-failure
// flag: done; otherwise: failed), when TimeoutStartSec kills it (failed,
// the unit's Result is "timeout") or when JobTimeoutSec ends the job alone
// (timeout; the command runs on).
func (s *standIn) runStart(id uint32, job dbus.ObjectPath, name string, u *sdUnit, ex sdExec, env []string) {
	defer s.wg.Done()
	if s.OnStartJob != nil {
		s.OnStartJob(name)
	}
	journal, err := os.OpenFile(u.journal, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.endStart(id, job, name, u, "resources")
		return
	}
	defer func() { _ = journal.Close() }()
	// A file, not a pipe: the VMM a forking command leaves behind keeps
	// its stdout, as it keeps systemd's journal stream.
	cmd := &exec.Cmd{
		Path: ex.Path, Args: ex.Argv, Env: append([]string{unitPATH}, env...), Dir: "/",
		Stdout: journal, Stderr: journal, SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		_, _ = fmt.Fprintf(journal, "%s: Failed to execute %s: %v\n", name, ex.Path, err)
		s.endStart(id, job, name, u, "exit-code")
		return
	}
	s.mu.Lock()
	u.cmd = cmd
	s.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	limit := s.StartTimeout
	if u.startTimeout > 0 {
		limit = u.startTimeout
	}
	startTimeout := time.NewTimer(limit)
	defer startTimeout.Stop()
	var jobTimeout <-chan time.Time
	if s.JobTimeout > 0 {
		jobTimeout = time.After(s.JobTimeout)
	}
	jobEnded := false
	for {
		select {
		case err := <-exited:
			result := ""
			if err != nil && !ex.IgnoreFailure {
				_, _ = fmt.Fprintf(journal, "%s: Control process exited: %v\n", name, err)
				result = "exit-code"
			}
			if jobEnded {
				s.settle(name, u, result)
				return
			}
			s.endStart(id, job, name, u, result)
			return
		case <-startTimeout.C:
			_, _ = fmt.Fprintf(journal, "%s: start operation timed out. Terminating.\n", name)
			_ = killAndReap(cmd, exited)
			if jobEnded {
				s.settle(name, u, "timeout")
				return
			}
			s.endStart(id, job, name, u, "timeout")
			return
		case <-s.done:
			_ = killAndReap(cmd, exited)
			return
		case <-jobTimeout:
			_, _ = fmt.Fprintf(journal, "Job %s/start timed out.\n", name)
			s.emitJobRemoved(id, job, name, "timeout")
			jobEnded, jobTimeout = true, nil
		}
	}
}

// killAndReap kills the command's process group and returns its exit.
func killAndReap(cmd *exec.Cmd, exited <-chan error) error {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return <-exited
}

// endStart settles the unit after its command and ends the start job:
// "done" when the command succeeded, "failed" otherwise (whatever the
// unit's Result: exit-code, timeout...).
func (s *standIn) endStart(id uint32, job dbus.ObjectPath, name string, u *sdUnit, result string) {
	s.settle(name, u, result)
	if result == "" {
		s.emitJobRemoved(id, job, name, "done")
	} else {
		s.emitJobRemoved(id, job, name, "failed")
	}
}

// settle records the unit's state after its start command and unloads it
// when systemd would collect it (unit_may_gc: a transient unit nothing
// references is unloaded once inactive, or failed with
// CollectMode=inactive-or-failed).
func (s *standIn) settle(name string, u *sdUnit, result string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.cmd = nil
	if result == "" {
		u.state = "active"
		return
	}
	u.state = "failed"
	s.collectLocked(name, u)
}

func (s *standIn) collectLocked(name string, u *sdUnit) {
	if s.units[name] == u && (u.state == "inactive" || u.state == "failed" && u.collect == "inactive-or-failed") {
		delete(s.units, name)
	}
}

func (s *standIn) emitJobRemoved(id uint32, job dbus.ObjectPath, unit, result string) {
	_ = s.conn.Emit(sdPath, sdInterface+".JobRemoved", id, job, unit, result)
}

func (m sdManager) StopUnit(msg dbus.Message, name, mode string) (dbus.ObjectPath, *dbus.Error) {
	s := m.s
	c := sdCall{Member: "StopUnit", Signature: bodySignature(msg), Unit: name, Mode: mode}
	if err := checkCall(msg, c.Member); err != nil {
		return "", s.record(c, err)
	}
	if err := checkJobMode(mode); err != nil {
		return "", s.record(c, err)
	}
	s.mu.Lock()
	u := s.units[name]
	if u == nil {
		s.mu.Unlock()
		return "", s.record(c, sdErr(errNoSuchUnit, "Unit %s not loaded.", name))
	}
	s.jobs++
	id := s.jobs
	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if s.StopResult != "" {
			s.emitJobRemoved(id, job, name, s.StopResult)
			return
		}
		s.mu.Lock()
		if u.cmd != nil {
			_ = syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL)
		}
		// Stopping a failed unit is a redundant job: it ends at once and
		// the unit stays failed (job_type_is_redundant).
		if u.state != "failed" {
			u.state = "inactive"
		}
		s.collectLocked(name, u)
		s.mu.Unlock()
		s.emitJobRemoved(id, job, name, "done")
	}()
	return job, s.record(c, nil)
}

func (m sdManager) ResetFailedUnit(msg dbus.Message, name string) *dbus.Error {
	s := m.s
	c := sdCall{Member: "ResetFailedUnit", Signature: bodySignature(msg), Unit: name}
	if err := checkCall(msg, c.Member); err != nil {
		return s.record(c, err)
	}
	s.mu.Lock()
	u := s.units[name]
	if u != nil && u.state == "failed" {
		u.state = "inactive"
		s.collectLocked(name, u)
	}
	s.mu.Unlock()
	if u == nil {
		return s.record(c, sdErr(errNoSuchUnit, "Unit %s not loaded.", name))
	}
	return s.record(c, nil)
}
