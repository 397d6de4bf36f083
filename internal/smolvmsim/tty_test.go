package smolvmsim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// exec -i -t gives the guest a real terminal whose size follows ours: a
// resize of the simulator's terminal, done before typing, is what the guest
// sees when the typed line arrives.
func TestTTYExecFollowsResize(t *testing.T) {
	s := newSim(t)
	s.running("tty")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := s.command(ctx, "machine", "exec", "--name", "tty", "-i", "-t", "--",
		"runuser", "-l", "node", "-c", `stty size; tty -s && echo tty-ok; IFS= read -r l; stty size; echo "line=$l"; exit 3`)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ptmx.Close() }()
	out := &testutil.SyncBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			_, _ = out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	out.WaitFor(t, "tty-ok", 20*time.Second)
	if !strings.Contains(out.String(), "30 100") {
		t.Fatalf("initial size not propagated: %q", out.String())
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	if _, err := ptmx.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "line=hello", 20*time.Second)
	err = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("exit %v; output %q", err, out.String())
	}
	if !strings.Contains(out.String(), "50 160") {
		t.Fatalf("resize not seen: %q", out.String())
	}
	// Typed once, echoed once: the simulator's own terminal is raw.
	if c := strings.Count(out.String(), "hello"); c != 2 { // echo + line=hello
		t.Fatalf("%d copies of the input: %q", c, out.String())
	}
}

// Without a terminal on our side, -t still gives the guest one (80x24) and
// EOF on our stdin reaches it as end of input.
func TestTTYExecWithoutHostTerminal(t *testing.T) {
	s := newSim(t)
	s.running("tty2")
	r := s.runIn("abc\n", "machine", "exec", "--name", "tty2", "-i", "-t", "--", "sh", "-c", "stty size; cat; echo done")
	if r.code != 0 || !strings.Contains(r.stdout, "24 80") || !strings.Contains(r.stdout, "abc") || !strings.Contains(r.stdout, "done") {
		t.Fatalf("%+v", r)
	}
}
