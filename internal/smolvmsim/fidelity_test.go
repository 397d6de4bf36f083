package smolvmsim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

// Behaviours of real smolvm the simulator must have, each from
// smolvm's source as cited in the implementation.

func TestCreateWarnsAboveSixteenVCPUs(t *testing.T) {
	s := newSim(t)
	r := s.run("machine", "create", "--name", "big", "--image", "alpine", "--cpus", "32")
	if r.code != 0 || r.stderr != "warning: requested 32 vCPUs but the hypervisor supports at most 16; the VM will run with 16 vCPUs\n" {
		t.Fatalf("create --cpus 32: %+v", r)
	}
	// The record keeps what was asked, as smolvm's status does.
	if st := s.status("big"); st.CPUs != 32 {
		t.Fatalf("status cpus %d", st.CPUs)
	}
	if r := s.run("machine", "create", "--name", "small", "--image", "alpine", "--cpus", "16"); r.code != 0 || r.stderr != "" {
		t.Fatalf("create --cpus 16: %+v", r)
	}
}

func TestCreateFailsOnAnAllowHostThatDoesNotResolve(t *testing.T) {
	s := newSim(t)
	expect(t, "unresolvable", s.run("machine", "create", "--name", "dns", "--image", "alpine", "--allow-host", "example.com", "--allow-host", "api.example.invalid"),
		"", "Error: config operation failed: --allow-host: failed to resolve 'api.example.invalid': failed to lookup address information: Name or service not known\n", 1)
	// Resolution comes before the name is taken: nothing was created.
	expect(t, "status", s.run("machine", "status", "--name", "dns", "--json"), "",
		"Error: config operation failed: machine status: machine 'dns' not found\n", 1)
}

// The first start pulls for SMOLVM_SIM_PULL (default non-zero); later
// starts do not pull.
func TestFirstStartPullTakesItsTime(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_PULL=400ms")
	s.ok("machine", "create", "--name", "p", "--image", "node:22")
	began := time.Now()
	s.ok("machine", "start", "--name", "p")
	if d := time.Since(began); d < 400*time.Millisecond {
		t.Fatalf("first start took %s, less than the pull", d)
	}
	if pullLatency() <= 0 {
		t.Fatal("the default pull latency is zero")
	}
}

// status and ls report a running machine `unreachable` while its guest
// agent cannot answer: 8 connections busy, or marked wedged.
func TestUnreachableWhileTheAgentIsBusyOrWedged(t *testing.T) {
	s := newSim(t)
	s.running("busy")
	g := gomega.NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cmds []*exec.Cmd
	for range maxAgentConns {
		cmd := s.command(ctx, "machine", "exec", "--name", "busy", "--stream", "--", "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	g.Eventually(func() string { return s.status("busy").State }).WithTimeout(30 * time.Second).Should(gomega.Equal("unreachable"))
	if ls := s.ok("machine", "ls", "--json"); !strings.Contains(ls, `"state": "unreachable"`) && !strings.Contains(ls, `"state":"unreachable"`) {
		t.Fatalf("ls: %s", ls)
	}
	// One connection frees: the ping is answered again.
	_ = cmds[0].Process.Kill()
	_ = cmds[0].Wait()
	g.Eventually(func() string { return s.status("busy").State }).WithTimeout(30 * time.Second).Should(gomega.Equal("running"))
	for _, c := range cmds[1:] {
		_ = c.Process.Kill()
		_ = c.Wait()
	}

	marker := filepath.Join(s.data, "machines", "busy", UnreachableMarker)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := s.status("busy").State; st != "unreachable" {
		t.Fatalf("wedged: state %q", st)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if st := s.status("busy").State; st != "running" {
		t.Fatalf("answering again: state %q", st)
	}
}

// exec runs as the image's declared USER, and runuser, as util-linux's,
// then refuses to switch users.
func TestExecRunsAsTheImageUser(t *testing.T) {
	if !hostIsRoot() {
		t.Skip("the simulator switches users only as root")
	}
	s := newSim(t, ImagesEnv+`={"agent-image:1": {"user": "node", "env": ["IMG=from-image", "OVR=image"], "workdir": "/opt"}}`)
	s.ok("machine", "create", "--name", "u", "--image", "agent-image:1")
	s.ok("machine", "start", "--name", "u")
	if out := s.ok("machine", "exec", "--name", "u", "--", "sh", "-c", "id -un; echo $HOME"); out != "node\n/home/node\n" {
		t.Fatalf("exec in an image with USER node: %q", out)
	}
	expect(t, "runuser as node", s.run("machine", "exec", "--name", "u", "--", "runuser", "-u", "node", "--", "true"),
		"", "runuser: may not be used by non-root users\n", 1)
	// The image's ENV is under -e; its WORKDIR is used without -w.
	if out := s.ok("machine", "exec", "--name", "u", "-e", "OVR=exec", "--", "sh", "-c", "echo $IMG $OVR; pwd"); out != "from-image exec\n/opt\n" {
		t.Fatalf("image env and workdir: %q", out)
	}
	if out := s.ok("machine", "exec", "--name", "u", "-w", "/tmp", "--", "pwd"); out != "/tmp\n" {
		t.Fatalf("-w over the image's workdir: %q", out)
	}

	s.running("plain")
	if out := s.ok("machine", "exec", "--name", "plain", "--", "id", "-un"); out != "root\n" {
		t.Fatalf("exec in an image without USER: %q", out)
	}
}

// --secret-env: an unset host variable is smolvm's config error, and -e
// overrides a secret of the same name.
func TestSecretEnvAsSmolvm(t *testing.T) {
	s := newSim(t, "HOSTVAL=from-secret")
	s.running("sec")
	expect(t, "unset", s.run("machine", "exec", "--name", "sec", "--secret-env", "K=NOT_SET_ANYWHERE", "--", "true"),
		"", "Error: config operation failed: resolve secret 'K': env_unset\n", 1)
	if out := s.ok("machine", "exec", "--name", "sec", "--secret-env", "K=HOSTVAL", "-e", "K=from-e", "--", "sh", "-c", "echo $K"); out != "from-e\n" {
		t.Fatalf("-e vs --secret-env: %q", out)
	}
	if out := s.ok("machine", "exec", "--name", "sec", "--secret-env", "K=HOSTVAL", "--", "sh", "-c", "echo $K"); out != "from-secret\n" {
		t.Fatalf("--secret-env: %q", out)
	}
	// -e KEY forwards smolvm's own KEY, or nothing when it is unset.
	if out := s.ok("machine", "exec", "--name", "sec", "-e", "HOSTVAL", "-e", "UNSET_ANYWHERE_X", "--", "sh", "-c",
		"echo $HOSTVAL ${UNSET_ANYWHERE_X-unset}"); out != "from-secret unset\n" {
		t.Fatalf("-e KEY: %q", out)
	}
}
