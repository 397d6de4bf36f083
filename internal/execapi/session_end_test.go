package execapi

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/bot-bottle/bottle-controller/internal/certs"
)

// hostProcessWith says whether a process on this host has marker among its
// arguments. The simulator's guests are host processes in their own
// namespaces, so the host sees whether a guest command still runs.
func hostProcessWith(marker string) bool {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg == marker {
				return true
			}
		}
	}
	return false
}

// A client that answers nothing (no pong, no data) for missedPings
// keepalive periods is gone: the agent ends its session and kills the
// guest command (docs/exec.md "Keepalive"). The client here is a gateway
// that opened a session on node-a's agent and then never reads, so never
// answers a ping.
func TestSilentClientEndsTheSessionAndItsCommand(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	cert, err := tls.X509KeyPair(s.bundle.AgentClient.CertPEM, s.bundle.AgentClient.KeyPEM)
	g.Expect(err).NotTo(HaveOccurred())
	// A sleep no other test runs: its argument finds it on the host.
	const marker = "6173.25"
	q := url.Values{"command": {"sleep", marker}, "stdout": {"true"}, "stderr": {"true"}}
	u := "wss://" + s.addrA + agentPathPrefix + "/namespaces/" + testNamespace + "/bottles/local/exec?" + q.Encode()
	d := websocket.Dialer{
		Subprotocols:    []string{remotecommand.StreamProtocolV5Name},
		TLSClientConfig: &tls.Config{RootCAs: s.bundle.ExecCA.Pool(), ServerName: certs.AgentServerName, Certificates: []tls.Certificate{cert}},
	}
	conn, resp, err := d.Dial(u, http.Header{requesterHeader: {"alice"}})
	g.Expect(err).NotTo(HaveOccurred(), "dial: %v", resp)
	defer func() { _ = conn.Close() }()
	opened := time.Now()

	g.Eventually(func() bool { return hostProcessWith(marker) }).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).
		Should(BeTrue(), "the guest command runs")
	g.Eventually(func() bool { return hostProcessWith(marker) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
		Should(BeFalse(), "the guest command of a silent client's session is killed")
	g.Expect(time.Since(opened)).To(BeNumerically(">=", missedPings*testKeepAlive), "ended before the client was silent for missedPings periods")
	g.Eventually(s.serverLogA.String).Should(ContainSubstring("session ended: client disconnected"))
}

// A session's log line names the Bottle, the users, the TTY and how many
// arguments and variables there were, never an argument or a value
// (docs/exec.md: commands and --env carry secrets).
func TestSessionLogsCarryNoArgumentsOrEnvironment(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	const arg, value = "argument-not-for-logs-5521", "value-not-for-logs-8813"
	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "local", "--env", "LOGGED_NOT="+value, "--",
		"sh", "-c", `echo "$0 $LOGGED_NOT"`, arg)
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal(arg + " " + value + "\n"))
	// The line of this session: its end follows its start.
	g.Eventually(s.serverLogA.String).Should(ContainSubstring(`"exitCode"=0`))
	logs := s.serverLogA.String()
	g.Expect(logs).To(And(ContainSubstring("session started"), ContainSubstring(`"args"=`), ContainSubstring(`"envVars"=`)))
	g.Expect(logs).NotTo(ContainSubstring(arg))
	g.Expect(logs).NotTo(ContainSubstring(value))
	g.Expect(logs).NotTo(ContainSubstring("LOGGED_NOT"))
}
