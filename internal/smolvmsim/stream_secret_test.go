package smolvmsim

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"
)

// A plain exec prints nothing until the command exits; --stream prints as
// it goes (the contract's "machine exec --stream").
func TestExecStreamsOnlyWithStream(t *testing.T) {
	s := newSim(t)
	s.running("str")
	for _, tc := range []struct {
		flags []string
		live  bool
	}{{nil, false}, {[]string{"--stream"}, true}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := append(append([]string{"machine", "exec", "--name", "str"}, tc.flags...), "--", "sh", "-c", "echo first; sleep 2; echo second")
		cmd := s.command(ctx, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		early := time.Since(start) < 1500*time.Millisecond
		_ = cmd.Wait()
		cancel()
		if line != "first\n" || early != tc.live {
			t.Errorf("flags %v: first line %q after %s; live %v", tc.flags, line, time.Since(start), tc.live)
		}
	}
}

// --secret-env GUEST=HOST takes the value from smolvm's own environment.
func TestExecSecretEnv(t *testing.T) {
	s := newSim(t)
	s.running("sec")
	r := s.runWith([]string{"HOST_SECRET=s3cr3t value"}, "machine", "exec", "--name", "sec",
		"--secret-env", "GUEST=HOST_SECRET", "-e", "PLAIN=p", "--", "sh", "-c", `printf '%s|%s|%s' "$GUEST" "$PLAIN" "${HOST_SECRET-unset}"`)
	expect(t, "secret env", r, "s3cr3t value|p|unset", "", 0)
	r = s.run("machine", "exec", "--name", "sec", "--secret-env", "GUEST=NOT_SET_ANYWHERE", "--", "true")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: ") {
		t.Errorf("unset host variable: %+v", r)
	}
	r = s.run("machine", "exec", "--name", "sec", "--secret-env", "NOEQUALS", "--", "true")
	if r.code != 2 {
		t.Errorf("malformed --secret-env: %+v", r)
	}
}
