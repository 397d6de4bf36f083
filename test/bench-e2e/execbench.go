package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// The exec figures: `kubectl-bottle exec` through the API server against
// the smolvm command the agent runs for it, started directly (the argv
// read back from the simulator's log), alternately so that both meet the
// same load.

// pluginExec runs kubectl-bottle exec NAME -- argv..., its stdout into out.
func (d *devEnv) pluginExec(ctx context.Context, plugin, bottle string, out io.Writer, argv ...string) error {
	args := append([]string{"--kubeconfig", d.kubeconfig(), "-n", benchNamespace, "exec", bottle, "--"}, argv...)
	return runReading(exec.CommandContext(ctx, plugin, args...), out)
}

// directExec runs smolvm with argv, as the agent does, its stdout into out.
func (d *devEnv) directExec(ctx context.Context, argv []string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, d.smolvm(), argv...)
	cmd.Env = append(withoutSimKnobs(os.Environ()), "SMOLVM_DATA_DIR="+d.dataDir(), "SMOLVM_SIM_LATENCY="+d.latency)
	return runReading(cmd, out)
}

// runReading runs cmd with its stdout read into out through a pipe, in reads of
// up to 1 MiB: both paths are read the same way.
func runReading(cmd *exec.Cmd, out io.Writer) error {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var copyErr error
	for {
		n, err := pipe.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil && copyErr == nil {
				copyErr = werr
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				copyErr = err
			}
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd.Path, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return copyErr
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// agentArgv runs the command once through the plugin and reads back the
// smolvm argv the agent ran for it.
func (d *devEnv) agentArgv(ctx context.Context, plugin, bottle, machine string, argv ...string) ([]string, error) {
	if err := d.pluginExec(ctx, plugin, bottle, io.Discard, argv...); err != nil {
		return nil, err
	}
	invs, err := readInvocations(d.simLog)
	if err != nil {
		return nil, err
	}
	agent := lastExec(invs, machine)
	if agent == nil {
		return nil, fmt.Errorf("no exec of machine %s in %s", machine, d.simLog)
	}
	return agent, nil
}

// execOverhead times `true` both ways, runs times each.
func (d *devEnv) execOverhead(ctx context.Context, plugin, bottle, machine string, runs int) (viaPlugin, direct []time.Duration, err error) {
	argv, err := d.agentArgv(ctx, plugin, bottle, machine, "true")
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < runs; i++ {
		start := time.Now()
		if err := d.pluginExec(ctx, plugin, bottle, io.Discard, "true"); err != nil {
			return nil, nil, err
		}
		viaPlugin = append(viaPlugin, time.Since(start))
		start = time.Now()
		if err := d.directExec(ctx, argv, io.Discard); err != nil {
			return nil, nil, err
		}
		direct = append(direct, time.Since(start))
	}
	return viaPlugin, direct, nil
}

// execStream streams size bytes of guest stdout both ways, runs times
// each, and returns the MB/s of each run.
func (d *devEnv) execStream(ctx context.Context, plugin, bottle, machine string, size int64, runs int) (viaPlugin, direct []float64, err error) {
	cmd := []string{"head", "-c", strconv.FormatInt(size, 10), "/dev/zero"}
	argv, err := d.agentArgv(ctx, plugin, bottle, machine, cmd...)
	if err != nil {
		return nil, nil, err
	}
	measure := func(f func(io.Writer) error) (float64, error) {
		c := &counter{}
		start := time.Now()
		if err := f(c); err != nil {
			return 0, err
		}
		if c.n != size {
			return 0, fmt.Errorf("streamed %d bytes, want %d", c.n, size)
		}
		return float64(size) / time.Since(start).Seconds() / 1e6, nil
	}
	for i := 0; i < runs; i++ {
		p, err := measure(func(w io.Writer) error { return d.pluginExec(ctx, plugin, bottle, w, cmd...) })
		if err != nil {
			return nil, nil, err
		}
		viaPlugin = append(viaPlugin, p)
		q, err := measure(func(w io.Writer) error { return d.directExec(ctx, argv, w) })
		if err != nil {
			return nil, nil, err
		}
		direct = append(direct, q)
	}
	return viaPlugin, direct, nil
}
