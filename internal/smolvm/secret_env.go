package smolvm

import (
	"strconv"
	"strings"
)

// secretEnvCarrier names the variables that carry values: in smolvm's
// environment, and in login mode also in the guest (whitelisted through
// `runuser -l`, which otherwise clears the environment).
const secretEnvCarrier = "_BOTTLE_SESSION_ENV_"

// maxEnvEntry is Linux's MAX_ARG_STRLEN: the most one NAME=value entry of a
// process environment may hold, its NUL included. A longer one makes
// execve fail with E2BIG ("argument list too long").
const maxEnvEntry = 32 * 4096

// secretEnv is how ExecInteractive hands ExecRequest.Env to the guest. Its
// stdin belongs to the session, so the values cannot go there as they do for
// Exec; they go into smolvm's process environment instead, and only
// variable names reach a command line.
type secretEnv struct {
	flags   []string // --secret-env GUEST=HOST pairs for smolvm
	procEnv []string // HOST=value entries for smolvm's environment
}

// withSecretEnv moves req.Env out of the request. A user switched with
// `runuser -u` (ModeDirect) or no user keeps the environment, so each
// variable is injected under its own name. A login shell (ModeLogin) clears
// it: carriers are injected and whitelisted (runuser -w), and the script
// exports each name from its carrier after the profile ran, as the export
// lines of Exec do.
func withSecretEnv(verb string, req ExecRequest) (ExecRequest, secretEnv, error) {
	var se secretEnv
	if len(req.Env) == 0 {
		return req, se, nil
	}
	login := req.User != "" && req.Mode == ModeLogin
	var prelude strings.Builder
	for i, e := range req.Env {
		if err := checkEnvVar(verb, e); err != nil {
			return req, se, err
		}
		carrier := secretEnvCarrier + strconv.Itoa(i)
		entry := carrier + "=" + e.Value
		if len(entry)+1 > maxEnvEntry {
			// Steps get their env on stdin and have no such limit; a
			// session's stdin is the user's, so its env goes through
			// smolvm's own environment. Say so, rather than E2BIG.
			return req, se, newUsageError(verb, "environment variable %s is %d bytes: a session passes spec.env through smolvm's process environment, where Linux allows at most %d bytes per variable (steps are not limited); use a file (spec.files) for a value this large",
				e.Name, len(e.Value), maxEnvEntry-len(carrier)-2)
		}
		se.procEnv = append(se.procEnv, entry)
		guest := e.Name
		if login {
			guest = carrier
			req.loginWhitelist = append(req.loginWhitelist, carrier)
			prelude.WriteString("export " + e.Name + "=\"$" + carrier + "\"")
			if e.Name != carrier {
				prelude.WriteString("; unset " + carrier)
			}
			prelude.WriteString("\n")
		}
		se.flags = append(se.flags, flagSecretEnv, guest+"="+carrier)
	}
	req.loginPrelude = prelude.String()
	req.Env = nil
	return req, se, nil
}

// withFlags inserts smolvm flags before the "--" that ends them.
func withFlags(argv, flags []string) []string {
	if len(flags) == 0 {
		return argv
	}
	for i, a := range argv {
		if a == endOfFlags {
			out := make([]string, 0, len(argv)+len(flags))
			out = append(out, argv[:i]...)
			out = append(out, flags...)
			return append(out, argv[i:]...)
		}
	}
	return append(argv, flags...)
}
