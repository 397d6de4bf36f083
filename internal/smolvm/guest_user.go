package smolvm

import (
	"fmt"
	"strconv"
	"strings"
)

// Guest-side user switching: smolvm runs commands as root, so a guest user
// is reached with util-linux runuser from the image.
const (
	guestRunuser      = "runuser"
	runuserLogin      = "-l"
	runuserCommand    = "-c"
	runuserUser       = "-u"
	runuserWhitelist  = "-w" // --whitelist-environment, util-linux >= 2.33
	guestShell        = "/bin/sh"
	guestShellCommand = "-c"
)

// guestCommand turns an ExecRequest into the env passed with -e, the guest
// argv after "--", the -w directory, and the payload written to smolvm's
// stdin (-i) ahead of any caller stdin.
//
// Exec (verbExec) never puts a script or an environment value on a command
// line, where any host user reads it in /proc/PID/cmdline: when the request
// has a Script or Env, they travel as the payload, a shell text of `export`
// lines and the script (Argv becomes `exec 'a' 'b'`), and the guest command
// is a shell that reads exactly the payload's bytes and evaluates them:
//
//	sh -c 'eval "$(head -c N)"'
//
// head -c reads no further than N bytes, so the script's stdin is what
// follows: the caller's Stdin, or EOF.
//
//   - User "": `/bin/sh -c READER`; workdir via -w.
//   - ModeLogin: `runuser -l USER -c READER`. A login shell changes to $HOME,
//     so the workdir is a `cd` line of the payload.
//   - ModeDirect: `runuser -u USER -- /bin/sh -c READER`, with HOME, USER and
//     LOGNAME (not secrets) via -e and the workdir via -w.
//
// Without Script and Env (a bare Argv), and always for ExecInteractive, whose
// stdin belongs to the session, the command is on argv: `runuser -l USER -c
// SCRIPT` or `runuser -u USER -- ARGV`. ExecInteractive's Env goes through
// --secret-env carriers (withSecretEnv), never argv; guestCommand itself
// refuses Env on any verb but Exec.
func guestCommand(verb string, req ExecRequest) (env []EnvVar, argv []string, workdir, payload string, err error) {
	hasScript, hasArgv := req.Script != "", len(req.Argv) > 0
	if hasScript == hasArgv {
		return nil, nil, "", "", newUsageError(verb, "exec request needs exactly one of Script or Argv")
	}
	if err := checkNoNUL(verb, "script", req.Script); err != nil {
		return nil, nil, "", "", err
	}
	for i, a := range req.Argv {
		if err := checkNoNUL(verb, fmt.Sprintf("argv[%d]", i), a); err != nil {
			return nil, nil, "", "", err
		}
	}
	if hasArgv && req.Argv[0] == "" {
		return nil, nil, "", "", newUsageError(verb, "argv[0] is empty")
	}
	for _, e := range req.Env {
		if err := checkEnvVar(verb, e); err != nil {
			return nil, nil, "", "", err
		}
	}
	if req.Workdir != "" {
		if err := checkGuestPath(verb, "workdir", req.Workdir); err != nil {
			return nil, nil, "", "", err
		}
	}
	if req.User != "" && !validUserName(req.User) {
		return nil, nil, "", "", newUsageError(verb, "invalid guest user name")
	}
	if req.Mode != ModeLogin && req.Mode != ModeDirect {
		return nil, nil, "", "", newUsageError(verb, "unknown exec mode %d", int(req.Mode))
	}
	viaStdin := verb == verbExec && (hasScript || len(req.Env) > 0)
	if verb != verbExec && len(req.Env) > 0 {
		return nil, nil, "", "", newUsageError(verb, "an interactive exec takes no Env: it would be on smolvm's command line")
	}
	login := req.User != "" && req.Mode == ModeLogin
	if viaStdin {
		payload = guestPayload(req, login)
	}
	// shellCommand is what a shell runs: the payload reader, or the script.
	shellCommand := func() string {
		if viaStdin {
			return payloadReader(len(payload))
		}
		if hasScript {
			return req.Script
		}
		return "exec " + quoteArgv(req.Argv)
	}
	switch {
	case req.User == "":
		if viaStdin || hasScript {
			return nil, []string{guestShell, guestShellCommand, shellCommand()}, req.Workdir, payload, nil
		}
		return nil, req.Argv, req.Workdir, "", nil
	case login:
		if !viaStdin {
			// An interactive exec: its stdin is the session's, so the session
			// environment arrives in carrier variables (--secret-env, see
			// withSecretEnv) that the login shell is told to keep (-w) and the
			// prelude exports under their real names after the profile ran.
			script := req.loginPrelude
			if req.Workdir != "" {
				script += "cd " + quote(req.Workdir) + " || exit 1\n"
			}
			argv := []string{guestRunuser, runuserLogin, req.User}
			if len(req.loginWhitelist) > 0 {
				argv = append(argv, runuserWhitelist, strings.Join(req.loginWhitelist, ","))
			}
			return nil, append(argv, runuserCommand, script+shellCommand()), "", "", nil
		}
		return nil, []string{guestRunuser, runuserLogin, req.User, runuserCommand, shellCommand()}, "", payload, nil
	}
	home := req.Home
	if home == "" {
		home = defaultHome(req.User)
	}
	if err := checkGuestPath(verb, "home", home); err != nil {
		return nil, nil, "", "", err
	}
	env = []EnvVar{{"HOME", home}, {"USER", req.User}, {"LOGNAME", req.User}}
	argv = []string{guestRunuser, runuserUser, req.User, endOfFlags}
	if viaStdin || hasScript {
		argv = append(argv, guestShell, guestShellCommand, shellCommand())
	} else {
		argv = append(argv, req.Argv...)
	}
	return env, argv, req.Workdir, payload, nil
}

// guestPayload is the shell text an exec sends on stdin: the environment as
// export lines, the workdir as a cd line when a login shell would otherwise
// start in $HOME, then the script (or `exec ARGV`).
func guestPayload(req ExecRequest, cdWorkdir bool) string {
	var b strings.Builder
	for _, e := range req.Env {
		b.WriteString("export " + e.Name + "=" + quote(e.Value) + "\n")
	}
	if cdWorkdir && req.Workdir != "" {
		b.WriteString("cd " + quote(req.Workdir) + " || exit 1\n")
	}
	if req.Script != "" {
		b.WriteString(req.Script)
	} else {
		b.WriteString("exec " + quoteArgv(req.Argv))
	}
	return b.String()
}

// payloadReader is the guest shell command that reads an n-byte payload
// from stdin and runs it, leaving the rest of stdin to the script.
func payloadReader(n int) string {
	return `eval "$(head -c ` + strconv.Itoa(n) + `)"`
}

func defaultHome(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}
