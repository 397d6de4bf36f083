package vmlauncher

import (
	"reflect"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestUnitFor(t *testing.T) {
	req := smolvm.LaunchRequest{
		Machine:      "bottle-ns-agent-1a2b",
		Argv:         []string{"/opt/smolvm/bin/smolvm", "machine", "start", "--name", "bottle-ns-agent-1a2b"},
		Env:          []string{"SMOLVM_DATA_DIR=/var/lib/bottle-controller/smolvm"},
		CPUs:         2,
		MemoryMiB:    4096,
		StartTimeout: 5 * time.Minute,
	}
	u, err := UnitFor(req, 256)
	if err != nil {
		t.Fatal(err)
	}
	want := Unit{
		Name:               "bottle-vm-bottle-ns-agent-1a2b.service",
		Description:        "bottle-controller VM bottle-ns-agent-1a2b",
		Type:               "forking",
		ExecStart:          req.Argv,
		Environment:        req.Env,
		MemoryMax:          (4096 + 256) << 20,
		CPUQuotaPerSecUSec: 2_000_000,
		KillMode:           "mixed",
		CollectMode:        "inactive-or-failed",
		TimeoutStartUSec:   300_000_000,
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("unit\n got %+v\nwant %+v", u, want)
	}

	props := map[string]any{}
	for _, p := range u.Properties() {
		props[p.Name] = p.Value.Value()
	}
	if props["MemoryMax"] != uint64((4096+256)<<20) || props["CPUQuotaPerSecUSec"] != uint64(2_000_000) ||
		props["KillMode"] != "mixed" || props["Type"] != "forking" || props["CollectMode"] != "inactive-or-failed" ||
		props["TimeoutStartUSec"] != uint64(300_000_000) {
		t.Fatalf("properties: %v", props)
	}
	if env, _ := props["Environment"].([]string); !reflect.DeepEqual(env, req.Env) {
		t.Fatalf("Environment property: %v", props["Environment"])
	}
	// ExecStart is a(sasb): path, argv (argv[0] included), ignore-failure.
	execStart := reflect.ValueOf(props["ExecStart"])
	if execStart.Len() != 1 {
		t.Fatalf("ExecStart: %v", props["ExecStart"])
	}
	cmd := execStart.Index(0)
	if cmd.Field(0).String() != req.Argv[0] || !reflect.DeepEqual(cmd.Field(1).Interface(), req.Argv) {
		t.Fatalf("ExecStart: %v", props["ExecStart"])
	}
}

func TestUnitForDefaultsAndRejects(t *testing.T) {
	argv := []string{"/opt/smolvm/bin/smolvm", "machine", "start", "--name", "m"}
	u, err := UnitFor(smolvm.LaunchRequest{Machine: "m", Argv: argv}, 256)
	if err != nil {
		t.Fatal(err)
	}
	if u.MemoryMax != (8192+256)<<20 || u.CPUQuotaPerSecUSec != 4_000_000 {
		t.Fatalf("a machine with no recorded size gets smolvm's defaults (4 CPUs, 8192 MiB): %+v", u)
	}
	for name, req := range map[string]smolvm.LaunchRequest{
		"flag-like name":   {Machine: "-rf", Argv: argv},
		"name with a dot":  {Machine: "a.b", Argv: argv},
		"name with /":      {Machine: "../x", Argv: argv},
		"relative smolvm":  {Machine: "m", Argv: []string{"smolvm", "machine", "start"}},
		"no argv":          {Machine: "m"},
		"NUL in argv":      {Machine: "m", Argv: []string{"/smolvm", "a\x00b"}},
		"env without name": {Machine: "m", Argv: argv, Env: []string{"=x"}},
		"env without =":    {Machine: "m", Argv: argv, Env: []string{"X"}},
		"env name digit":   {Machine: "m", Argv: argv, Env: []string{"1X=y"}},
		"env name dash":    {Machine: "m", Argv: argv, Env: []string{"A-B=y"}},
		"env value escape": {Machine: "m", Argv: argv, Env: []string{"A=\x1b[0m"}},
		"env value UTF-8":  {Machine: "m", Argv: argv, Env: []string{"A=\xff"}},
	} {
		if _, err := UnitFor(req, 256); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
