package smolvm

import (
	"fmt"
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
// argv after "--", and the -w directory.
//
//   - User "": argv as given (Script runs under /bin/sh -c), env via -e.
//   - ModeLogin: `runuser -l USER -c SCRIPT`. A login shell resets the
//     environment and changes to $HOME, so env becomes `export` lines and the
//     workdir a `cd` line at the top of the script; Argv becomes `exec ARGV`.
//   - ModeDirect: `runuser -u USER -- ARGV` (Script runs under /bin/sh -c);
//     runuser keeps the environment, so HOME/USER/LOGNAME and env go via -e.
func guestCommand(verb string, req ExecRequest) (env []EnvVar, argv []string, workdir string, err error) {
	hasScript, hasArgv := req.Script != "", len(req.Argv) > 0
	if hasScript == hasArgv {
		return nil, nil, "", newUsageError(verb, "exec request needs exactly one of Script or Argv")
	}
	if err := checkNoNUL(verb, "script", req.Script); err != nil {
		return nil, nil, "", err
	}
	for i, a := range req.Argv {
		if err := checkNoNUL(verb, fmt.Sprintf("argv[%d]", i), a); err != nil {
			return nil, nil, "", err
		}
	}
	if hasArgv && req.Argv[0] == "" {
		return nil, nil, "", newUsageError(verb, "argv[0] is empty")
	}
	for _, e := range req.Env {
		if err := checkEnvVar(verb, e); err != nil {
			return nil, nil, "", err
		}
	}
	if req.Workdir != "" {
		if err := checkGuestPath(verb, "workdir", req.Workdir); err != nil {
			return nil, nil, "", err
		}
	}
	if req.User == "" {
		if hasScript {
			return req.Env, []string{guestShell, guestShellCommand, req.Script}, req.Workdir, nil
		}
		return req.Env, req.Argv, req.Workdir, nil
	}
	if !validUserName(req.User) {
		return nil, nil, "", newUsageError(verb, "invalid guest user name")
	}
	switch req.Mode {
	case ModeLogin:
		var b strings.Builder
		for _, e := range req.Env {
			b.WriteString("export " + e.Name + "=" + Quote(e.Value) + "\n")
		}
		b.WriteString(req.loginPrelude)
		if req.Workdir != "" {
			b.WriteString("cd " + Quote(req.Workdir) + " || exit 1\n")
		}
		if hasScript {
			b.WriteString(req.Script)
		} else {
			b.WriteString("exec " + quoteArgv(req.Argv))
		}
		argv := []string{guestRunuser, runuserLogin, req.User}
		if len(req.loginWhitelist) > 0 {
			argv = append(argv, runuserWhitelist, strings.Join(req.loginWhitelist, ","))
		}
		return nil, append(argv, runuserCommand, b.String()), "", nil
	case ModeDirect:
		home := req.Home
		if home == "" {
			home = defaultHome(req.User)
		}
		if err := checkGuestPath(verb, "home", home); err != nil {
			return nil, nil, "", err
		}
		env = append([]EnvVar{{"HOME", home}, {"USER", req.User}, {"LOGNAME", req.User}}, req.Env...)
		argv = []string{guestRunuser, runuserUser, req.User, endOfFlags}
		if hasScript {
			argv = append(argv, guestShell, guestShellCommand, req.Script)
		} else {
			argv = append(argv, req.Argv...)
		}
		return env, argv, req.Workdir, nil
	}
	return nil, nil, "", newUsageError(verb, "unknown exec mode %d", int(req.Mode))
}

func defaultHome(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}
