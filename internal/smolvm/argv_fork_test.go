package smolvm

import (
	"reflect"
	"strings"
	"testing"
)

// The argv of the fork verbs, as smolvm's src/cli/machine.rs spells them.
func TestForkArgvBuilders(t *testing.T) {
	tests := []struct {
		name string
		got  func() ([]string, error)
		want []string
	}{
		{"start forkable", func() ([]string, error) { return startForkableArgv("g") },
			[]string{"machine", "start", "--name", "g", "--forkable"}},
		{"fork one", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g", Name: "c"}) },
			[]string{"machine", "fork", "--golden", "g", "--name", "c"}},
		{"fork one held with parameters", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Name: "c", Count: 1, Hold: true, Env: []EnvVar{{"SLOT", "3"}}})
		}, []string{"machine", "fork", "--golden", "g", "--name", "c", "--hold", "-e", "SLOT=3"}},
		{"fork batch", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Count: 3, NamePrefix: "slot", Hold: true})
		}, []string{"machine", "fork", "--golden", "g", "--count", "3", "--name-prefix", "slot", "--hold"}},
		{"release", func() ([]string, error) { return forkReleaseArgv("c", []EnvVar{{"JOB", "a=b"}}) },
			[]string{"machine", "fork-release", "--name", "c", "-e", "JOB=a=b"}},
		{"release bare", func() ([]string, error) { return forkReleaseArgv("c", nil) },
			[]string{"machine", "fork-release", "--name", "c"}},
		{"delete cascade", func() ([]string, error) { return deleteCascadeArgv("g") },
			[]string{"machine", "delete", "--name", "g", "--cascade"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("argv mismatch\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// Fork requests refused before anything runs, without echoing values.
func TestForkArgvRejects(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		name  string
		build func() ([]string, error)
		class ErrorClass
	}{
		{"golden as flag", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "--hold", Name: "c"}) }, ClassInvalidName},
		{"clone name with dot", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g", Name: "a.b"}) }, ClassInvalidName},
		{"no clone name", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g"}) }, ClassInvalidName},
		{"batch with a name", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Name: "c", Count: 2, NamePrefix: "p"})
		}, ClassUsage},
		{"one clone with a prefix", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g", NamePrefix: "p"}) }, ClassUsage},
		{"batch prefix as flag", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g", Count: 2, NamePrefix: "-x"}) }, ClassInvalidName},
		{"batch clone names too long", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Count: 10, NamePrefix: strings.Repeat("p", MaxMachineNameLen-1)})
		}, ClassInvalidName},
		{"count too large", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Count: maxForkCount + 1, NamePrefix: "p"})
		}, ClassUsage},
		{"negative count", func() ([]string, error) { return forkArgv(ForkRequest{Golden: "g", Name: "c", Count: -1}) }, ClassUsage},
		{"fork parameter name", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Name: "c", Env: []EnvVar{{"A-B", secret}}})
		}, ClassUsage},
		{"fork parameter with a line break", func() ([]string, error) {
			return forkArgv(ForkRequest{Golden: "g", Name: "c", Env: []EnvVar{{"A", secret + "\nB=1"}}})
		}, ClassUsage},
		{"release parameter with NUL", func() ([]string, error) {
			return forkReleaseArgv("c", []EnvVar{{"A", secret + "\x00"}})
		}, ClassUsage},
		{"release bad name", func() ([]string, error) { return forkReleaseArgv("-n", nil) }, ClassInvalidName},
		{"cascade bad name", func() ([]string, error) { return deleteCascadeArgv("a/b") }, ClassInvalidName},
		{"start forkable bad name", func() ([]string, error) { return startForkableArgv("") }, ClassInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := tt.build()
			if err == nil {
				t.Fatalf("expected an error, got argv %q", argv)
			}
			if got := ClassOf(err); got != tt.class {
				t.Fatalf("class = %q, want %q (%v)", got, tt.class, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks a value: %v", err)
			}
		})
	}
}

// smolvm reports fork relations in two keys of status/ls.
func TestParseForkKeys(t *testing.T) {
	m, err := parseMachine([]byte(`{"name":"s","state":"running","forkable":false,"forkpoint_held":true,"labels":{}}`))
	if err != nil || m.Forkable || !m.ForkpointHeld {
		t.Fatalf("held slot: %+v %v", m, err)
	}
	ms, err := parseMachineList([]byte(`[{"name":"g","state":"frozen","forkable":true,"forkpoint_held":false}]`))
	if err != nil || len(ms) != 1 || !ms[0].Forkable || ms[0].ForkpointHeld || ms[0].State != StateFrozen {
		t.Fatalf("golden: %+v %v", ms, err)
	}
}

// A verb that prints progress on stderr before smolvm's error line (fork)
// is classified by that line.
func TestErrorLineAfterProgress(t *testing.T) {
	c := &CLI{}
	e := c.failure(verbFork, outcome{exitCode: 1,
		stderrHead: "Freezing golden 'g' as fork base...\nError: agent operation failed: fork: machine 'c' already exists\n"})
	if e == nil || e.Class != ClassAlreadyExists || e.Message != "agent operation failed: fork: machine 'c' already exists" {
		t.Fatalf("got %+v", e)
	}
}
