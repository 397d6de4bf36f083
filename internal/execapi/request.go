package execapi

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// sessionRequest is what a client asked for, from the path and the query
// (the parameters of `kubectl exec`, plus `user`).
type sessionRequest struct {
	namespace, name, subresource string
	// resource is the parent resource in the agent path: "" for bottles,
	// bottleruns (bottleruns/log) or bottletemplates (bottletemplates/log).
	resource string
	// command: the command for exec, extra claude arguments for attach.
	command               []string
	stdin, stdout, stderr bool
	tty                   bool
	// user overrides the Bottle's execUser (exec only).
	user string
	// env adds to or overrides spec.env for this session.
	env []smolvm.EnvVar
}

// guestUserRE is spec.execUser's rule.
var guestUserRE = regexp.MustCompile(v1.UserNamePattern)

// parseSessionRequest reads the path values of the session patterns and the
// query. Booleans are strict (true/false/1/0); stdout and stderr default to
// true, stdin and tty to false; with a TTY stderr is merged into stdout.
func parseSessionRequest(r *http.Request) (*sessionRequest, error) {
	sr := &sessionRequest{
		namespace:   r.PathValue("namespace"),
		name:        r.PathValue("name"),
		subresource: r.PathValue("subresource"),
	}
	q := r.URL.Query()
	sr.command = q["command"]
	var err error
	if sr.stdin, err = boolParam(q, "stdin", false); err != nil {
		return nil, err
	}
	if sr.stdout, err = boolParam(q, "stdout", true); err != nil {
		return nil, err
	}
	if sr.stderr, err = boolParam(q, "stderr", true); err != nil {
		return nil, err
	}
	if sr.tty, err = boolParam(q, "tty", false); err != nil {
		return nil, err
	}
	if sr.tty {
		sr.stderr = false
	}
	sr.user = q.Get("user")
	if sr.env, err = parseEnvParams(q["env"]); err != nil {
		return nil, err
	}
	switch sr.subresource {
	case v1.SubresourceExec:
		if len(sr.command) == 0 || sr.command[0] == "" {
			return nil, badRequest("exec needs a command: add one or more command= parameters")
		}
		if sr.user != "" && !guestUserRE.MatchString(sr.user) {
			return nil, badRequest("user must be a POSIX user name matching %s", guestUserRE)
		}
	case v1.SubresourceAttach:
		if sr.user != "" {
			return nil, badRequest("attach runs claude as the Bottle's execUser; user is only accepted by exec")
		}
	}
	if !sr.stdin && !sr.stdout && !sr.stderr {
		return nil, badRequest("at least one of stdin, stdout and stderr must be true")
	}
	for _, a := range sr.command {
		for i := 0; i < len(a); i++ {
			if a[i] == 0 {
				return nil, badRequest("command arguments cannot contain NUL bytes")
			}
		}
	}
	return sr, nil
}

func boolParam(q url.Values, key string, def bool) (bool, error) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return def, nil
	}
	b, err := strconv.ParseBool(v[len(v)-1])
	if err != nil {
		return false, badRequest("%s must be true or false, not %q", key, v[len(v)-1])
	}
	return b, nil
}

// envNameRE is a shell identifier: the guest exports these names.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parent is the resource in the agent path.
func (sr *sessionRequest) parent() string {
	if sr.resource != "" {
		return sr.resource
	}
	return v1.BottleResource
}
