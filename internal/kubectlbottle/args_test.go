package kubectlbottle

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestParseCpArgs(t *testing.T) {
	for _, tc := range []struct {
		a, b     string
		src, dst cpArg
		err      string
	}{
		{"./f", "b1:/home/node/f", cpArg{path: "./f"}, cpArg{"b1", "/home/node/f"}, ""},
		{"b1:/etc/hosts", "out", cpArg{"b1", "/etc/hosts"}, cpArg{path: "out"}, ""},
		{"./a:b", "b1:/x", cpArg{path: "./a:b"}, cpArg{"b1", "/x"}, ""},
		{"/x:y", "b1:/x", cpArg{path: "/x:y"}, cpArg{"b1", "/x"}, ""},
		{"b1:/x", "b2:/y", cpArg{}, cpArg{}, "one of SRC and DST must be local"},
		{"a", "b", cpArg{}, cpArg{}, "must be NAME:/path"},
		{"a", "b1:rel", cpArg{}, cpArg{}, "must be absolute"},
	} {
		src, dst, err := parseCpArgs(tc.a, tc.b)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s: err %v, want %q", tc.a, tc.b, err, tc.err)
		case tc.err == "" && (err != nil || src != tc.src || dst != tc.dst):
			t.Errorf("%s %s: %+v %+v %v", tc.a, tc.b, src, dst, err)
		}
	}
}

func TestParsePhaseIgnoresCase(t *testing.T) {
	for in, want := range map[string]v1.Phase{"ready": "Ready", "READY": "Ready", "copyingfiles": "CopyingFiles", "Failed": "Failed"} {
		if got, ok := parsePhase(in); !ok || got != want {
			t.Errorf("parsePhase(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := parsePhase("done"); ok {
		t.Error("parsePhase accepted an unknown phase")
	}
}

func TestUnreachableCause(t *testing.T) {
	aggregator := apierrors.NewGenericServerResponse(http.StatusServiceUnavailable, "get",
		schema.GroupResource{Group: "subresources.agents.bot-bottle.dev", Resource: "bottles"}, "b",
		"error trying to reach service: dial tcp 127.0.0.1:9443: connect: connection refused", 0, true)
	gateway := &apierrors.StatusError{ErrStatus: metav1.Status{Code: http.StatusBadGateway,
		Message: `the agent on node "n2" is unreachable (10.0.0.2:9443): dial tcp: i/o timeout`}}
	for _, tc := range []struct {
		err  error
		want string // "" = not an unreachable agent
	}{
		{aggregator, "dial tcp 127.0.0.1:9443: connect: connection refused"},
		{fmt.Errorf("websocket: bad handshake (503 Service Unavailable): error trying to reach service: dial tcp 127.0.0.1:1: connect: connection refused"), "dial tcp 127.0.0.1:1: connect: connection refused"},
		{gateway, `the agent on node "n2" is unreachable (10.0.0.2:9443): dial tcp: i/o timeout`},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "bottles"}, "b", errors.New("no")), ""},
		{errors.New("websocket: bad handshake (403 Forbidden)"), ""},
	} {
		got, ok := unreachableCause(tc.err)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("unreachableCause(%v) = %q %v, want %q", tc.err, got, ok, tc.want)
		}
	}
}

// logs reads a Bottle's steps (NAME) or a template golden's (--template):
// never both, and --node only with a template.
func TestLogsArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "b1", "--template", "t1"}, "give either a Bottle's NAME or --template TEMPLATE, not both"},
		{[]string{"logs", "b1", "--node", "n1"}, "--node goes with --template"},
		{[]string{"logs"}, "accepts 1 arg(s), received 0"},
	} {
		var out, errOut strings.Builder
		code := Main(tc.args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("kubectl bottle %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
}
