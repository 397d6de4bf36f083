package execapi

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func parse(t *testing.T, sub, query string) (*sessionRequest, error) {
	t.Helper()
	var got *sessionRequest
	var err error
	mux := http.NewServeMux()
	mux.HandleFunc("/ns/{namespace}/b/{name}/{subresource}", func(w http.ResponseWriter, r *http.Request) {
		got, err = parseSessionRequest(r)
	})
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ns/team/b/bx/"+sub+"?"+query, nil))
	return got, err
}

func TestParseSessionRequest(t *testing.T) {
	got, err := parse(t, "exec", "command=sh&command=-c&command=echo+%22a+b%22&stdin=true&tty=true&user=root")
	if err != nil {
		t.Fatal(err)
	}
	want := &sessionRequest{namespace: "team", name: "bx", subresource: "exec",
		command: []string{"sh", "-c", `echo "a b"`}, stdin: true, stdout: true, stderr: false, tty: true, user: "root"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	got, err = parse(t, "attach", "")
	if err != nil || got.command != nil || !got.stdout || !got.stderr || got.stdin {
		t.Fatalf("attach defaults: %+v, %v", got, err)
	}

	bad := map[string]struct{ sub, query, msg string }{
		"exec without command": {"exec", "stdin=true", "exec needs a command"},
		"bad bool":             {"exec", "command=id&tty=yes", `tty must be true or false, not "yes"`},
		"bad user":             {"exec", "command=id&user=Root%3Brm", "user must be a POSIX user name"},
		"user on attach":       {"attach", "user=root", "user is only accepted by exec"},
		"no streams":           {"exec", "command=id&stdout=false&stderr=false", "at least one of stdin"},
		"NUL":                  {"exec", "command=a%00b", "NUL"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, c.sub, c.query)
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want BadRequest containing %q", err, c.msg)
			}
		})
	}
}

func TestSessionExecRequest(t *testing.T) {
	b := &v1.Bottle{
		Spec:   v1.BottleSpec{MachineName: "spec-m", MachineSpec: v1.MachineSpec{ExecUser: "agent", PromptPath: "/p/prompt.md"}},
		Status: v1.BottleStatus{MachineName: "m-1"},
	}
	env := []smolvm.EnvVar{{Name: "ANTHROPIC_API_KEY", Value: "k"}}
	attach := sessionExecRequest(b, &sessionRequest{subresource: v1.SubresourceAttach, command: []string{"--resume", "x y"}}, smolvm.ModeLogin, env)
	want := smolvm.ExecRequest{Machine: "m-1", User: "agent", Mode: smolvm.ModeLogin, Env: env,
		Argv: []string{"claude", "--append-system-prompt-file", "/p/prompt.md", "--resume", "x y"}}
	if !reflect.DeepEqual(attach, want) {
		t.Fatalf("attach = %+v, want %+v", attach, want)
	}

	b.Spec.PromptPath = ""
	if got := sessionExecRequest(b, &sessionRequest{subresource: v1.SubresourceAttach}, smolvm.ModeDirect, nil); !reflect.DeepEqual(got.Argv, []string{"claude"}) || got.Mode != smolvm.ModeDirect {
		t.Fatalf("attach without prompt = %+v", got)
	}

	exec := sessionExecRequest(b, &sessionRequest{subresource: v1.SubresourceExec, command: []string{"id"}, user: "root"}, smolvm.ModeLogin, nil)
	if exec.User != "root" || !reflect.DeepEqual(exec.Argv, []string{"id"}) {
		t.Fatalf("exec --user root = %+v", exec)
	}
	b.Spec.ExecUser = ""
	if got := sessionExecRequest(b, &sessionRequest{subresource: v1.SubresourceExec, command: []string{"id"}}, smolvm.ModeLogin, nil); got.User != v1.DefaultExecUser {
		t.Fatalf("empty execUser runs as %q, want %q", got.User, v1.DefaultExecUser)
	}
}

func TestExitStatus(t *testing.T) {
	if st := exitStatus(0, nil); st.Status != metav1.StatusSuccess {
		t.Fatalf("exit 0 = %+v", st)
	}
	st := exitStatus(7, nil)
	if st.Reason != "NonZeroExitCode" || st.Details == nil || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Type != "ExitCode" || st.Details.Causes[0].Message != "7" {
		t.Fatalf("exit 7 = %+v", st)
	}
	if st := exitStatus(-1, nil); st.Reason != metav1.StatusReasonInternalError {
		t.Fatalf("killed = %+v", st)
	}
	if st := exitStatus(1, &smolvm.Error{Message: "machine 'm' is not running"}); !strings.Contains(st.Message, "not running") {
		t.Fatalf("smolvm failure = %+v", st)
	}
}
