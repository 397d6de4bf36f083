package execapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// Sessions get spec.env (a Secret's value resolved as the session starts)
// and --env on top.
func TestSessionEnvironment(t *testing.T) {
	script := `printf '%s|%s' "${ANTHROPIC_API_KEY:-unset}" "$LIT"`
	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "withenv", "--", "sh", "-c", script)
	if code != 0 || out != testAPIKey+"|a 'literal' $value" {
		t.Fatalf("exec: exit %d, %q (stderr %q)", code, out, errOut)
	}
	code, out, errOut = kubectlBottle(t, "alice", "", "exec", "withenv", "--env", "LIT=over ride", "-e", "NEW=1", "--", "sh", "-c", script+`; printf '|%s' "$NEW"`)
	if code != 0 || out != testAPIKey+"|over ride|1" {
		t.Fatalf("exec --env: exit %d, %q (stderr %q)", code, out, errOut)
	}
	code, _, errOut = kubectlBottle(t, "alice", "", "exec", "withenv", "--env", "1BAD=x", "--", "true")
	if code != 1 || !strings.Contains(errOut, "shell identifier") {
		t.Fatalf("--env with a bad name: exit %d, stderr %q", code, errOut)
	}
}

// A Failed Bottle whose machine runs takes sessions: that is how a failed
// step is debugged.
func TestExecIntoFailedBottle(t *testing.T) {
	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "failed", "--", "id", "-un")
	if code != 0 || out != "node\n" {
		t.Fatalf("exit %d, %q (stderr %q)", code, out, errOut)
	}
}

func bottleUID(t *testing.T, name string) string {
	t.Helper()
	s := needSuite(t)
	b := &v1.Bottle{}
	if err := s.admin.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return string(b.UID)
}

func TestLogs(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	uid := bottleUID(t, "withenv")

	// A 5 MB step reads back byte for byte through the API server.
	big := make([]byte, 5<<20)
	_, _ = rand.Read(big)
	w, err := s.logsA.Begin(uid, "install")
	g.Expect(err).NotTo(HaveOccurred())
	for p := big; len(p) > 0; p = p[min(len(p), 4096):] {
		_, _ = w.Write(p[:min(len(p), 4096)])
	}
	_ = w.Close()
	code, out, errOut := kubectlBottle(t, "alice", "", "logs", "withenv", "--step", "install")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal(string(big)), "got %d bytes, want the 5 MiB written", len(out))

	// -f shows a line of a running step, and ends when the step ends.
	w, err = s.logsA.Begin(uid, "slow")
	g.Expect(err).NotTo(HaveOccurred())
	expectFollowed(g, s, w, &kubectlbottle.LogRequest{Namespace: testNamespace, Name: "withenv", Follow: true, TailLines: -1})

	code, out, _ = kubectlBottle(t, "alice", "", "logs", "withenv", "--tail", "1", "--timestamps")
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(MatchRegexp(`^\d{4}-\d\d-\d\dT\S+Z second\n$`), "default step is the latest; tail 1 with a timestamp")

	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "withenv", "--step", "nope")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`bottle "withenv" has no step "nope" (its steps: install, slow)`))
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "local")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring("has not run a provisioning step yet"))

	// bob may exec but holds no get on bottles/log.
	err = (&kubectlbottle.LogRequest{Namespace: testNamespace, Name: "withenv", TailLines: -1}).Stream(context.Background(), as(s, "bob"), &bytes.Buffer{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "bob's error: %v", err)
}

// expectFollowed follows req as alice while the step writing to w runs:
// a line shows while it runs, the next one too, and the follow ends when
// w is closed (the step ends).
func expectFollowed(g *WithT, s *e2eSuite, w io.WriteCloser, req *kubectlbottle.LogRequest) {
	_, _ = w.Write([]byte("first line\n"))
	followed := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- req.Stream(context.Background(), as(s, "alice"), followed) }()
	g.Eventually(followed.String, 20*time.Second).Should(Equal("first line\n"))
	g.Consistently(done, 300*time.Millisecond).ShouldNot(Receive(), "follow ended while the step runs")
	_, _ = w.Write([]byte("second\n"))
	g.Eventually(followed.String, 20*time.Second).Should(Equal("first line\nsecond\n"))
	_ = w.Close()
	g.Eventually(done, 20*time.Second).Should(Receive(BeNil()))
}

// cp streams a 50 MB file both ways through the exec subresource, byte for
// byte, keeping its mode.
func TestCopyBothWays(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	data := make([]byte, 50<<20)
	_, _ = rand.Read(data)
	g.Expect(os.WriteFile(src, data, 0o640)).To(Succeed())
	g.Expect(os.Chmod(src, 0o640)).To(Succeed())

	code, _, errOut := kubectlBottle(t, "alice", "", "cp", src, "local:/tmp/")
	g.Expect(code).To(Equal(0), errOut)
	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "local", "--", "sh", "-c", "stat -c %a /tmp/big.bin; sha256sum < /tmp/big.bin")
	g.Expect(code).To(Equal(0), errOut)
	lines := strings.Split(out, "\n")
	g.Expect(lines[0]).To(Equal("640"))
	sum := sha256.Sum256(data)
	g.Expect(strings.Fields(lines[1])[0]).To(Equal(hex.EncodeToString(sum[:])), "the uploaded file differs")

	dst := filepath.Join(dir, "back.bin")
	code, _, errOut = kubectlBottle(t, "alice", "", "cp", "local:/tmp/big.bin", dst)
	g.Expect(code).To(Equal(0), errOut)
	back, err := os.ReadFile(dst)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Equal(back, data)).To(BeTrue(), "downloaded %d bytes differ from the %d uploaded", len(back), len(data))
	fi, err := os.Stat(dst)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o640)))

	// Errors name the problem; nothing half-written is left behind.
	code, _, errOut = kubectlBottle(t, "alice", "", "cp", "local:/tmp", filepath.Join(dir, "x"))
	g.Expect(code).NotTo(Equal(0))
	g.Expect(errOut).To(ContainSubstring("is a directory"))
	_, err = os.Stat(filepath.Join(dir, "x"))
	g.Expect(os.IsNotExist(err)).To(BeTrue())
	code, _, errOut = kubectlBottle(t, "alice", "", "cp", src, "local:relative")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring("must be absolute"))
}

// TestCopyAsRootNeverFollowsTheExecUsersLinks: `cp --user root` refuses a
// directory link the exec user planted, and replaces a link at the file's
// own name instead of writing through it (root wrote the upload anywhere).
func TestCopyAsRootNeverFollowsTheExecUsersLinks(t *testing.T) {
	g := NewWithT(t)
	src := filepath.Join(t.TempDir(), "upload.txt")
	g.Expect(os.WriteFile(src, []byte("operator's\n"), 0o644)).To(Succeed())
	code, _, errOut := kubectlBottle(t, "alice", "", "exec", "local", "--", "sh", "-c",
		"mkdir -p ~/cp-links && ln -sfn /etc ~/cp-links/cfg && ln -sfn /etc/cp-owned ~/cp-links/report.txt")
	g.Expect(code).To(Equal(0), errOut)

	code, _, errOut = kubectlBottle(t, "alice", "", "cp", "--user", "root", src, "local:/home/node/cp-links/cfg/")
	g.Expect(code).NotTo(Equal(0))
	g.Expect(errOut).To(ContainSubstring("cfg in /home/node/cp-links/cfg is a link another user made"))
	code, _, errOut = kubectlBottle(t, "alice", "", "cp", "--user", "root", src, "local:/home/node/cp-links/report.txt")
	g.Expect(code).To(Equal(0), errOut)

	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "local", "--user", "root", "--", "sh", "-c",
		"ls /etc/upload.txt /etc/cp-owned 2>&1; stat -c '%F %U' /home/node/cp-links/report.txt; ls -a /home/node/cp-links")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(ContainSubstring("cannot access '/etc/upload.txt'"))
	g.Expect(out).To(ContainSubstring("cannot access '/etc/cp-owned'"))
	g.Expect(out).To(ContainSubstring("regular file root"))
	g.Expect(out).NotTo(ContainSubstring("kubectl-bottle-cp"), "no temporary file left")
}
