package execapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The exec path, measured three ways in the same iteration so that load
// from other processes hits all of them alike:
//
//	direct     the agent's own smolvm call (ExecInteractive, same request)
//	agent      kubectl bottle's client straight to the gateway (front-proxy
//	           certificate, no kube-apiserver): what the agent's WebSocket costs
//	apiserver  kubectl bottle's client through the kube-apiserver's
//	           aggregation layer
//	plugin     the kubectl-bottle binary, as users run it (a process per
//	           exec: its start-up counts)
//
// Goals (set when the stream ran at 126–145 MB/s and exec cost 144 ms against
// 31 ms direct): at least 300 MB/s through the API server, and at most
// 60 ms of overhead per exec over the direct call.

// benchStreamBytes is what one throughput iteration streams out of the guest.
const benchStreamBytes = 256 << 20

// BenchmarkExecStream streams benchStreamBytes of guest stdout and reports
// MB/s for each path.
func BenchmarkExecStream(b *testing.B) {
	s := needBenchSuite(b)
	argv := []string{"head", "-c", strconv.Itoa(benchStreamBytes), "/dev/zero"}
	paths := s.execPaths(b)
	elapsed := make([]time.Duration, len(paths))
	cpu := make([]cpuTimes, len(paths))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, p := range paths {
			out := &countingWriter{}
			before := readCPU()
			start := time.Now()
			var err error
			// Labelled, a -cpuprofile splits this process's CPU by path
			// (go tool pprof -tags); the agent's side is unlabelled.
			pprof.Do(context.Background(), pprof.Labels("path", p.name), func(context.Context) { err = p.run(argv, out) })
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			elapsed[j] += time.Since(start)
			cpu[j] = cpu[j].add(readCPU().sub(before))
			if out.n != benchStreamBytes {
				b.Fatalf("%s: streamed %d bytes, want %d", p.name, out.n, benchStreamBytes)
			}
		}
	}
	b.StopTimer()
	mb := float64(benchStreamBytes) * float64(b.N) / 1e6
	for j, p := range paths {
		b.ReportMetric(mb/elapsed[j].Seconds(), p.name+"-MB/s")
		// CPU per GB tells a change apart from the load of a shared
		// machine, which moves MB/s.
		b.ReportMetric(cpu[j].total()/mb*1e3, p.name+"-CPU-s/GB")
	}
	// Where the plugin path's CPU goes: the agent (this process), the
	// plugin, smolvm and the guest (waited-for children), the API server.
	last := cpu[len(cpu)-1]
	b.ReportMetric(last.self/mb*1e3, "plugin-path-agent-CPU-s/GB")
	b.ReportMetric(last.plugin/mb*1e3, "plugin-path-plugin-CPU-s/GB")
	b.ReportMetric((last.children-last.plugin)/mb*1e3, "plugin-path-smolvm-CPU-s/GB")
	b.ReportMetric(last.apiserver/mb*1e3, "plugin-path-kube-apiserver-CPU-s/GB")
}

// BenchmarkExecOverhead runs `true` and reports the milliseconds of each
// path and the overhead of the API server path over the direct call.
func BenchmarkExecOverhead(b *testing.B) {
	s := needBenchSuite(b)
	paths := s.execPaths(b)
	elapsed := make([]time.Duration, len(paths))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, p := range paths {
			start := time.Now()
			if err := p.run([]string{"true"}, io.Discard); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			elapsed[j] += time.Since(start)
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(b.N) }
	for j, p := range paths {
		b.ReportMetric(ms(elapsed[j]), p.name+"-ms/exec")
	}
	// The goal is about the plugin as users run it; the in-process
	// client's overhead shows what its start-up adds.
	b.ReportMetric(ms(elapsed[len(paths)-1]-elapsed[0]), "overhead-ms/exec")
	b.ReportMetric(ms(elapsed[len(paths)-2]-elapsed[0]), "inprocess-overhead-ms/exec")
}

func needBenchSuite(b *testing.B) *e2eSuite {
	b.Helper()
	if suite == nil {
		b.Skipf("skipping the exec API benchmarks: %s", suiteSkip)
	}
	return suite
}

type execPath struct {
	name string
	run  func(argv []string, stdout io.Writer) error
}

// execPaths are the ways to run a command in the Bottle "local" (node-a's
// machine local-1), as alice. direct comes first and plugin last.
func (s *e2eSuite) execPaths(b *testing.B) []execPath {
	ctx := context.Background()
	plugin, err := testutil.Plugin(s.dir)
	if err != nil {
		b.Fatal(err)
	}
	session := func(cfg *rest.Config) func([]string, io.Writer) error {
		return func(argv []string, stdout io.Writer) error {
			return (&kubectlbottle.Session{Namespace: testNamespace, Name: "local", Subresource: "exec",
				Command: argv, Stdout: stdout, Stderr: io.Discard}).Stream(ctx, cfg)
		}
	}
	// The gateway authenticates the aggregator by its front-proxy client
	// certificate and takes the user from the X-Remote-* headers.
	gateway := &rest.Config{
		Host: "https://" + s.addrA,
		TLSClientConfig: rest.TLSClientConfig{
			ServerName: certs.AgentServerName,
			CAFile:     s.files.ExecCA,
			CertFile:   s.files.FrontProxyClient,
			KeyFile:    s.files.FrontProxyClientKey,
		},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return remoteUser{rt: rt, user: "alice"}
		},
	}
	return []execPath{
		{"direct", func(argv []string, stdout io.Writer) error {
			code, err := s.simA.ExecInteractive(ctx, smolvm.ExecRequest{
				Machine: "local-1", User: "node", Argv: argv, Mode: smolvm.ModeLogin,
			}, smolvm.Streams{Stdout: stdout, Stderr: io.Discard})
			if err == nil && code != 0 {
				err = fmt.Errorf("exit code %d", code)
			}
			return err
		}},
		{"agent", session(gateway)},
		{"apiserver", session(as(s, "alice"))},
		{"plugin", func(argv []string, stdout io.Writer) error {
			cmd := exec.CommandContext(ctx, plugin, append([]string{"--kubeconfig", s.kubeconfig, "--as", "alice", "-n", testNamespace,
				"exec", "local", "--"}, argv...)...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = stdout, &stderr
			err := cmd.Run()
			if cmd.ProcessState != nil {
				pluginCPU += cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds()
			}
			if err != nil {
				return fmt.Errorf("%w: %s", err, stderr.String())
			}
			return nil
		}},
	}
}

// remoteUser sets the headers the aggregator would.
type remoteUser struct {
	rt   http.RoundTripper
	user string
}

func (r remoteUser) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Remote-User", r.user)
	req.Header.Set("X-Remote-Group", "system:authenticated")
	return r.rt.RoundTrip(req)
}

// pluginCPU adds up the CPU seconds of the kubectl-bottle processes run.
var pluginCPU float64

// cpuTimes are CPU seconds: of this process (client and agent), of its
// waited-for children (smolvm and the guest; kubectl-bottle, which plugin
// also counts), and of the kube-apiserver.
type cpuTimes struct{ self, children, plugin, apiserver float64 }

func (c cpuTimes) add(d cpuTimes) cpuTimes {
	return cpuTimes{c.self + d.self, c.children + d.children, c.plugin + d.plugin, c.apiserver + d.apiserver}
}

func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{c.self - d.self, c.children - d.children, c.plugin - d.plugin, c.apiserver - d.apiserver}
}

func (c cpuTimes) total() float64 { return c.self + c.children + c.apiserver }

func readCPU() cpuTimes {
	var c cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.self = rusageSeconds(ru)
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		c.children = rusageSeconds(ru)
	}
	c.plugin = pluginCPU
	c.apiserver = apiserverCPU()
	return c
}

func rusageSeconds(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// apiserverCPU is the CPU time of the envtest kube-apiserver (a child of
// this process), from /proc: it is not waited for while it runs.
func apiserverCPU() float64 {
	entries, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15), in clock ticks.
		end := bytes.LastIndexByte(stat, ')')
		open := bytes.IndexByte(stat, '(')
		if end < 0 || open < 0 || string(stat[open+1:end]) != "kube-apiserver" {
			continue
		}
		f := strings.Fields(string(stat[end+2:]))
		if len(f) < 13 || f[1] != me {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		return (ut + st) / 100 // USER_HZ is 100 on Linux
	}
	return 0
}

// countingWriter counts without buffering, like a fast consumer.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
