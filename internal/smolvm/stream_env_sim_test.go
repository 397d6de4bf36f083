package smolvm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Output receives a step's output while it runs (the driver passes
// --stream; the simulator, like smolvm, buffers without it), and every byte
// of it, beyond the kept tails.
func TestExecOutputStreamsEveryByte(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "stream")

	live := newWatchBuffer()
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, ExecRequest{Machine: "stream", User: "node", Script: "echo line-1; sleep 60",
			Timeout: 2 * time.Minute, Output: live})
		done <- err
	}()
	live.waitFor(t, "line-1\n") // while the step still sleeps
	select {
	case err := <-done:
		t.Fatalf("the step ended before its line was seen live: %v", err)
	default:
	}
	cancel()
	if err := <-done; ClassOf(err) != ClassCanceled {
		t.Fatalf("a cancelled exec returned %v, want the canceled class", err)
	}

	var all bytes.Buffer
	res := mustExec(t, c, ExecRequest{Machine: "stream", User: "node", Timeout: time.Minute, Output: &all,
		Script: "head -c 5000000 /dev/urandom > /tmp/r; cat /tmp/r; echo done >&2"})
	if res.ExitCode != 0 || res.StdoutBytes != 5000000 {
		t.Fatalf("exec: %+v", res)
	}
	sum := mustExec(t, c, ExecRequest{Machine: "stream", Script: "sha256sum < /tmp/r"})
	// stderr's line arrives on its own pipe: somewhere after the file's
	// start, in arrival order. Take it out and the file is left whole.
	got := all.Bytes()
	i := bytes.LastIndex(got, []byte("done\n"))
	if i < 0 || len(got) != 5000000+len("done\n") {
		t.Fatalf("Output holds %d bytes, want 5000000 and stderr's line", len(got))
	}
	got = append(got[:i:i], got[i+len("done\n"):]...)
	h := sha256.Sum256(got)
	if want := strings.Fields(sum.Stdout)[0]; hex.EncodeToString(h[:]) != want {
		t.Fatalf("Output differs from the guest's file")
	}
}

// The session environment reaches the guest through smolvm's environment
// (--secret-env), in both modes, with a login profile in between; only
// names are on smolvm's argv.
func TestExecInteractiveEnvNeverOnArgv(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "senv")
	secret := "sk-it's \"$HOME\" `id` $(id) ; é"
	env := []EnvVar{{"SECRET", secret}, {"PATH", "/opt/x:/usr/sbin:/usr/bin:/bin"}, {"SECRET", secret + "-last"}}
	for _, mode := range []ExecMode{ModeLogin, ModeDirect} {
		var out, errOut bytes.Buffer
		code, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "senv", User: "node", Mode: mode, Env: env,
			Argv: []string{"sh", "-c", `printf '%s|%s|' "$SECRET" "$PATH"; env | grep -c '^_BOTTLE_SESSION_ENV_' ; id -un`}},
			Streams{Stdout: &out, Stderr: &errOut})
		if err != nil || code != 0 {
			t.Fatalf("mode %d: code %d err %v stderr %q", mode, code, err, errOut.String())
		}
		if want := secret + "-last|/opt/x:/usr/sbin:/usr/bin:/bin|0\nnode\n"; out.String() != want {
			t.Fatalf("mode %d: %q, want %q", mode, out.String(), want)
		}

		req, se, err := withSecretEnv(verbInteractive, ExecRequest{Machine: "senv", User: "node", Mode: mode, Env: env, Argv: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		argv, _, err := execArgv(verbInteractive, req, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		argv = withFlags(argv, se.flags)
		if joined := strings.Join(argv, " "); strings.Contains(joined, "sk-it") || !slices.Contains(argv, flagSecretEnv) {
			t.Fatalf("mode %d argv carries the value or no --secret-env: %q", mode, argv)
		}
		if !slices.Contains(se.procEnv, "_BOTTLE_SESSION_ENV_0="+secret) {
			t.Fatalf("mode %d: smolvm's environment lacks the value: %q", mode, se.procEnv)
		}
	}
}

// A session's env goes through smolvm's process environment, where Linux
// caps each variable: the largest value that fits reaches the guest, one
// byte more is refused naming the variable, not smolvm's E2BIG.
func TestExecInteractiveEnvAtTheKernelLimit(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "senvbig")
	largest := maxEnvEntry - len(secretEnvCarrier+"0") - 2
	for _, tc := range []struct {
		size int
		ok   bool
	}{{largest, true}, {largest + 1, false}} {
		var out, errOut bytes.Buffer
		code, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "senvbig", User: "node", Mode: ModeDirect,
			Env:  []EnvVar{{"BIG", strings.Repeat("x", tc.size)}},
			Argv: []string{"sh", "-c", `printf %s "$BIG" | wc -c`}},
			Streams{Stdout: &out, Stderr: &errOut})
		if tc.ok {
			if err != nil || code != 0 || strings.TrimSpace(out.String()) != strconv.Itoa(tc.size) {
				t.Fatalf("%d bytes: code %d err %v out %q stderr %q", tc.size, code, err, out.String(), errOut.String())
			}
			continue
		}
		if ClassOf(err) != ClassUsage || !strings.Contains(err.Error(), "environment variable BIG is") || !strings.Contains(err.Error(), "spec.files") {
			t.Fatalf("%d bytes: got %v, want a usage error naming BIG", tc.size, err)
		}
	}
}
