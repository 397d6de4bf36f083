package smolvm

import (
	"fmt"
	"sync"
	"testing"
)

// 20 machines created, started and used at once: each sees only its own
// files, and the shared state (ls) stays consistent.
func TestManyMachinesConcurrently(t *testing.T) {
	c := newSim(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- exerciseMachine(t, c, i)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ms, err := c.List(testContext(t))
	if err != nil || len(ms) != n {
		t.Fatalf("list: %d machines, %v", len(ms), err)
	}
	for _, m := range ms {
		if m.State != StateRunning {
			t.Errorf("%s is %s", m.Name, m.State)
		}
	}
}

func exerciseMachine(t *testing.T, c *CLI, i int) error {
	ctx := testContext(t)
	name := fmt.Sprintf("par-%02d", i)
	if err := c.Create(ctx, MachineSpec{Name: name, Image: "node:22"}); err != nil {
		return fmt.Errorf("%s create: %w", name, err)
	}
	if err := c.Start(ctx, name); err != nil {
		return fmt.Errorf("%s start: %w", name, err)
	}
	own := fmt.Sprintf("I am %s", name)
	if _, err := c.Exec(ctx, ExecRequest{Machine: name, User: "node", Script: `echo "$MSG" > ~/own.txt`,
		Env: []EnvVar{{"MSG", own}}}); err != nil {
		return fmt.Errorf("%s write: %w", name, err)
	}
	res, err := c.Exec(ctx, ExecRequest{Machine: name, User: "node", Script: `cat ~/own.txt; ls /home/node | grep -c own.txt; hostname`})
	if err != nil {
		return fmt.Errorf("%s read: %w", name, err)
	}
	if want := own + "\n1\n" + name + "\n"; res.Stdout != want || res.ExitCode != 0 {
		return fmt.Errorf("%s read back %q (exit %d), want %q", name, res.Stdout, res.ExitCode, want)
	}
	return nil
}

// Concurrent starts of one machine are serialised: one boots, the rest see
// it running.
func TestConcurrentStartsOfOneMachine(t *testing.T) {
	c := newSim(t)
	ctx := testContext(t)
	if err := c.Create(ctx, MachineSpec{Name: "shared", Image: "i"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Start(ctx, "shared"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	m, err := c.Status(ctx, "shared")
	if err != nil || m.State != StateRunning {
		t.Fatalf("%+v %v", m, err)
	}
	mustExec(t, c, ExecRequest{Machine: "shared", Script: "test -f /etc/passwd"})
}
