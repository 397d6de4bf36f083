package vmlauncher

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

const (
	// UnitPrefix and UnitSuffix frame a machine's unit name.
	UnitPrefix = "bottle-vm-"
	UnitSuffix = ".service"

	// DefaultOverheadMiB is added to the VM's memory for MemoryMax: the VMM
	// process itself (libkrun, virtio queues, page tables) is outside the
	// guest's RAM.
	DefaultOverheadMiB = 256

	// smolvm's own defaults when a machine records no size (contract).
	smolvmDefaultCPUs      = 4
	smolvmDefaultMemoryMiB = 8192
)

// UnitName is the transient unit of one machine. The name is validated with
// smolvm's rules ([A-Za-z0-9_-], no leading '-'), all of which are legal in
// a unit name, so no escaping is needed and no other unit can be named.
func UnitName(machine string) (string, error) {
	if err := smolvm.ValidateMachineName(machine); err != nil {
		return "", err
	}
	return UnitPrefix + machine + UnitSuffix, nil
}

// Unit is what the agent asks systemd to start for one `machine start`.
type Unit struct {
	Name        string
	Description string
	// Type is "forking": smolvm exits once the VM runs and leaves the VMM,
	// which systemd then tracks; the unit ends when the VMM does (machine
	// stop/delete, or a crash), and CollectMode unloads it so the next start
	// can reuse the name.
	Type        string
	ExecStart   []string
	Environment []string
	MemoryMax   uint64 // bytes
	// CPUQuotaPerSecUSec is CPUQuota= in systemd's D-Bus units: CPU time per
	// second of wall time, 1s per vCPU.
	CPUQuotaPerSecUSec uint64
	// KillMode "mixed": stopping the unit sends SIGTERM to the VMM and
	// SIGKILL to what is left. The unit is not the agent's child and is not
	// bound to it, so stopping the agent never stops it.
	KillMode    string
	CollectMode string
	// TimeoutStartUSec is TimeoutStartSec=: how long smolvm may take to
	// start the VM before systemd kills the unit. It follows the driver's
	// start deadline (LaunchRequest.StartTimeout), not systemd's 90 s
	// default, because a first start pulls the image. 0 leaves systemd's
	// default.
	TimeoutStartUSec uint64
}

// UnitFor turns a launch request into the unit, with no side effect: this is
// the part of the systemd launcher that can be tested without systemd.
func UnitFor(req smolvm.LaunchRequest, overheadMiB int) (Unit, error) {
	name, err := UnitName(req.Machine)
	if err != nil {
		return Unit{}, err
	}
	if len(req.Argv) == 0 || !filepath.IsAbs(req.Argv[0]) {
		return Unit{}, fmt.Errorf("systemd launcher: smolvm path must be absolute (systemd runs it on the host), got %q", first(req.Argv))
	}
	for _, a := range req.Argv {
		if strings.ContainsRune(a, 0) {
			return Unit{}, fmt.Errorf("systemd launcher: NUL in argv")
		}
	}
	for _, e := range req.Env {
		if err := checkEnvEntry(e); err != nil {
			return Unit{}, err
		}
	}
	if overheadMiB < 0 {
		overheadMiB = 0
	}
	cpus, mem := req.CPUs, req.MemoryMiB
	if cpus <= 0 {
		cpus = smolvmDefaultCPUs
	}
	if mem <= 0 {
		mem = smolvmDefaultMemoryMiB
	}
	return Unit{
		Name:               name,
		Description:        "bottle-controller VM " + req.Machine,
		Type:               "forking",
		ExecStart:          append([]string(nil), req.Argv...),
		Environment:        append([]string{}, req.Env...),
		MemoryMax:          uint64(mem+overheadMiB) << 20,
		CPUQuotaPerSecUSec: uint64(cpus) * 1_000_000,
		KillMode:           "mixed",
		CollectMode:        "inactive-or-failed",
		TimeoutStartUSec:   uint64(max(req.StartTimeout, 0) / time.Microsecond),
	}, nil
}

// checkEnvEntry applies systemd's rule for Environment= (a name of
// [A-Za-z0-9_] not starting with a digit, a value without control
// characters but tab and newline), so a bad entry fails here with its name
// rather than as systemd's "Invalid environment block." The value is not
// quoted: it is the operator's and may be private.
func checkEnvEntry(e string) error {
	name, value, ok := strings.Cut(e, "=")
	valid := ok && name != "" && (name[0] < '0' || name[0] > '9')
	for _, r := range name {
		valid = valid && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}
	if !valid {
		return fmt.Errorf("systemd launcher: environment entry %q is not NAME=value with a NAME of letters, digits and _ (not starting with a digit), as systemd requires", name)
	}
	bad := !utf8.ValidString(value)
	for _, r := range value {
		bad = bad || r < ' ' && r != '\t' && r != '\n' || r == 0x7f
	}
	if bad {
		return fmt.Errorf("systemd launcher: the value of environment entry %s has a control character or invalid UTF-8, which systemd refuses", name)
	}
	return nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Properties is the unit as StartTransientUnit's a(sv) argument.
func (u Unit) Properties() []sdbus.Property {
	props := []sdbus.Property{
		sdbus.PropDescription(u.Description),
		sdbus.PropType(u.Type),
		// The bool of ExecStart's (sasb) is systemd's ignore-failure flag
		// ("ExecStart=-…"; dbus-execute.c), whatever go-systemd and the
		// man page call it. false: smolvm exiting non-zero fails the start
		// job, and the launcher reports it.
		sdbus.PropExecStart(u.ExecStart, false),
		{Name: "Environment", Value: dbus.MakeVariant(u.Environment)},
		{Name: "MemoryMax", Value: dbus.MakeVariant(u.MemoryMax)},
		{Name: "CPUQuotaPerSecUSec", Value: dbus.MakeVariant(u.CPUQuotaPerSecUSec)},
		{Name: "KillMode", Value: dbus.MakeVariant(u.KillMode)},
		{Name: "CollectMode", Value: dbus.MakeVariant(u.CollectMode)},
	}
	if u.TimeoutStartUSec > 0 {
		props = append(props, sdbus.Property{Name: "TimeoutStartUSec", Value: dbus.MakeVariant(u.TimeoutStartUSec)})
	}
	return props
}
