package smolvm

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// While a step runs, in either exec mode, neither its script nor a Secret
// value is on any host process's command line, and the script still reads
// an empty stdin.
func TestExecPayloadNeverOnACommandLine(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "payload")
	for _, mode := range []ExecMode{ModeLogin, ModeDirect} {
		for _, user := range []string{"", "node"} {
			t.Run(fmt.Sprintf("mode %d user %q", mode, user), func(t *testing.T) {
				secret := fmt.Sprintf("sk-ant-%d-%d-%d", mode, len(user), time.Now().UnixNano())
				marker := fmt.Sprintf("script-marker-%d-%d", mode, time.Now().UnixNano())
				// A unique sleep shows the scan saw the step's processes.
				sleep := fmt.Sprintf("2.%09d", time.Now().Nanosecond())
				script := fmt.Sprintf(`: %s
if read -r line; then echo "stdin not empty: $line"; exit 9; fi
[ "$TOKEN" = %q ] || { echo "TOKEN not set"; exit 8; }
sleep %s
echo done`, marker, secret, sleep)
				done := make(chan struct{})
				var res ExecResult
				var err error
				go func() {
					defer close(done)
					res, err = c.Exec(testContext(t), ExecRequest{Machine: "payload", User: user, Mode: mode, Script: script,
						Env: []EnvVar{{"TOKEN", secret}}, Timeout: time.Minute})
				}()
				deadline := time.After(30 * time.Second)
				sawStep := false
			scan:
				for {
					select {
					case <-done:
						break scan
					case <-deadline:
						t.Fatal("the step did not finish")
					default:
					}
					for _, s := range []string{secret, marker} {
						if found := processesMatching(s); len(found) > 0 {
							t.Fatalf("%q is on a command line:\n%s", s, strings.Join(found, "\n"))
						}
					}
					if len(processesMatching("sleep "+sleep)) > 0 {
						sawStep = true
					}
					time.Sleep(20 * time.Millisecond)
				}
				if err != nil || res.ExitCode != 0 || res.Stdout != "done\n" {
					t.Fatalf("res %+v err %v", res, err)
				}
				if !sawStep {
					t.Fatal("no scan of /proc saw the step running")
				}
			})
		}
	}
}

// The largest script the CRD accepts (65,536 characters of 4 bytes), with 64
// environment values of 32 KiB and one of 1 MiB, runs in both modes. The
// values are exported in the step's shell; programs it starts get them only
// within the kernel's exec limits (128 KiB per variable, ARG_MAX in total),
// so the script checks them with shell builtins.
func TestExecLargestPayload(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "big")
	check := `n=0; for v in ` + envNames(64) + `; do eval "l=\${#$v}"; [ "$l" -eq 32768 ] && n=$((n+1)); done
[ "${#BIG}" -eq 1048576 ] || { echo "BIG is ${#BIG}"; exit 3; }
if read -r line; then echo "stdin not empty"; exit 4; fi
echo "ok $n"
`
	// A comment line of 4-byte characters fills the script to 65,536 characters.
	pad := 65536 - len([]rune(check)) - len([]rune("# \n"))
	script := "# " + strings.Repeat("\U0001F600", pad) + "\n" + check
	if n := len([]rune(script)); n != 65536 {
		t.Fatalf("script has %d characters", n)
	}
	var env []EnvVar
	for i := range 64 {
		env = append(env, EnvVar{fmt.Sprintf("V%d", i), strings.Repeat(string(rune('a'+i%26)), 32768)})
	}
	env = append(env, EnvVar{"BIG", strings.Repeat("'\"$`\\x", 1<<20/6) + strings.Repeat("y", 1<<20%6)})
	for _, mode := range []ExecMode{ModeLogin, ModeDirect} {
		ctx, cancel := context.WithTimeout(testContext(t), 2*time.Minute)
		res, err := c.Exec(ctx, ExecRequest{Machine: "big", User: "node", Mode: mode, Script: script, Env: env})
		cancel()
		if err != nil || res.ExitCode != 0 || res.Stdout != "ok 64\n" {
			t.Fatalf("mode %d: exit %d err %v stdout %q stderr %q", mode, res.ExitCode, err, res.Stdout, res.Stderr)
		}
	}
}

func envNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("V%d", i)
	}
	return strings.Join(names, " ")
}
