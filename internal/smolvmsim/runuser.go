package smolvmsim

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// This file is the simulator's runuser, used inside sandboxes (the binary is
// mounted over /usr/sbin/runuser). It implements util-linux runuser's option
// syntax for the forms smolvm callers use:
//
//	runuser -l USER -c SCRIPT    login shell: fresh environment, cd $HOME
//	runuser -u USER -- ARGV...   no shell: environment kept, HOME/SHELL/
//	                             USER/LOGNAME set
//
// and really switches to the user's uid, gid and groups from the machine's
// /etc/passwd and /etc/group (setgroups/setgid/setuid, then execve), so file
// ownership in the machine is real. No PAM: the private /etc has none.

const (
	loginPathRoot = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	loginPathUser = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
)

type runuserOpts struct {
	login      bool
	command    string
	hasCommand bool
	shell      string
	preserve   bool
	whitelist  []string
	user       string // -u
	rest       []string
}

type runuserError struct {
	msg  string
	code int
	try  bool // append "Try 'runuser --help'..."
}

func (e *runuserError) Error() string { return e.msg }

func runuserMain(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case helperCopyIn:
			return copyInHelper(args[1:])
		case helperCopyOut:
			return copyOutHelper(args[1:])
		}
	}
	// runuser returns only on failure: on success it execs the target.
	err := runuser(args)
	var re *runuserError
	if errors.As(err, &re) {
		fmt.Fprintf(os.Stderr, "runuser: %s\n", re.msg)
		if re.try {
			fmt.Fprintln(os.Stderr, "Try 'runuser --help' for more information.")
		}
		return re.code
	}
	fmt.Fprintf(os.Stderr, "runuser: %v\n", err)
	return 1
}

func usageErrf(format string, args ...any) error {
	return &runuserError{msg: fmt.Sprintf(format, args...), code: 1, try: true}
}

// parseRunuser follows getopt_long with permutation, like util-linux:
// options may follow the user name; "--" ends options.
func parseRunuser(args []string) (*runuserOpts, error) {
	o := &runuserOpts{}
	withArg := map[string]*string{}
	var group, supp, session string
	withArg["c"], withArg["command"] = &o.command, &o.command
	withArg["s"], withArg["shell"] = &o.shell, &o.shell
	withArg["u"], withArg["user"] = &o.user, &o.user
	withArg["g"], withArg["group"] = &group, &group
	withArg["G"], withArg["supp-group"] = &supp, &supp
	withArg["session-command"] = &session
	var whitelist string
	withArg["w"], withArg["whitelist-environment"] = &whitelist, &whitelist
	boolOpt := func(name string) error {
		switch name {
		case "l", "login":
			o.login = true
		case "m", "p", "preserve-environment":
			o.preserve = true
		case "f", "fast", "P", "pty":
		case "h", "help":
			return &runuserError{msg: "usage: runuser [options] -u <user> [[--] <command>]\n       runuser [options] [-] [<user> [<argument>...]]", code: 0}
		case "V", "version":
			return &runuserError{msg: "runuser from smolvm-sim", code: 0}
		default:
			return usageErrf("unrecognized option '%s'", name)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.rest = append(o.rest, args[i+1:]...)
			i = len(args)
		case a == "-":
			o.login = true
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			if p, ok := withArg[name]; ok {
				if !hasVal {
					if i+1 >= len(args) {
						return nil, usageErrf("option '--%s' requires an argument", name)
					}
					i++
					val = args[i]
				}
				*p = val
				if name == "command" {
					o.hasCommand = true
				}
				continue
			}
			if err := boolOpt(name); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				name := string(a[j])
				p, ok := withArg[name]
				if !ok {
					if err := boolOpt(name); err != nil {
						var re *runuserError
						if errors.As(err, &re) && re.try {
							return nil, usageErrf("invalid option -- '%s'", name)
						}
						return nil, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, usageErrf("option requires an argument -- '%s'", name)
					}
					i++
					val = args[i]
				}
				*p = val
				if name == "c" {
					o.hasCommand = true
				}
				break
			}
		default:
			o.rest = append(o.rest, a)
		}
	}
	if whitelist != "" {
		o.whitelist = strings.Split(whitelist, ",")
	}
	if o.user != "" && (o.login || o.hasCommand || o.shell != "" || session != "") {
		return nil, usageErrf("options --{shell,fast,command,session-command,login} and --user are mutually exclusive")
	}
	return o, nil
}

// runuserTarget returns the user a runuser command line switches to, for
// the simulator's non-root mode (sandboxIdentity).
func runuserTarget(args []string) string {
	o, err := parseRunuser(args)
	if err != nil {
		return ""
	}
	if o.user != "" {
		return o.user
	}
	if len(o.rest) > 0 {
		return o.rest[0]
	}
	return "root"
}

func runuser(args []string) error {
	if runuserRefused() {
		return &runuserError{msg: "may not be used by non-root users", code: 1}
	}
	o, err := parseRunuser(args)
	if err != nil {
		return err
	}
	target, rest := o.user, o.rest
	if target == "" {
		target = "root"
		if len(rest) > 0 {
			target, rest = rest[0], rest[1:]
		}
	}
	pw, err := lookupUser("/etc/passwd", target)
	if err != nil {
		return &runuserError{msg: fmt.Sprintf("user %s does not exist or the user entry does not contain all the required fields", target), code: 1}
	}
	shell := pw.shell
	if o.shell != "" {
		shell = o.shell
	}
	if shell == "" {
		shell = "/bin/sh"
	}

	env := runuserEnv(o, pw, shell)
	var argv []string
	if o.user != "" && len(rest) > 0 {
		argv = rest
	} else {
		arg0 := filepath.Base(shell)
		if o.login {
			arg0 = "-" + arg0
		}
		argv = []string{arg0}
		if o.hasCommand {
			argv = append(argv, "-c", o.command)
		}
		argv = append(argv, rest...)
	}
	path := shell
	if o.user != "" && len(rest) > 0 {
		if path, err = lookPathIn(rest[0], envValue(env, "PATH")); err != nil {
			return &runuserError{msg: fmt.Sprintf("failed to execute %s: %v", rest[0], err), code: 127}
		}
	}

	groups, err := userGroups("/etc/group", pw.name, pw.gid)
	if err != nil {
		return &runuserError{msg: fmt.Sprintf("cannot read /etc/group: %v", err), code: 1}
	}
	if err := switchUser(pw, groups); err != nil {
		return err
	}
	if o.login {
		if err := os.Chdir(pw.home); err != nil {
			fmt.Fprintf(os.Stderr, "runuser: warning: cannot change directory to %s: %v\n", pw.home, errors.Unwrap(err))
			_ = os.Chdir("/")
		}
	}
	err = syscall.Exec(path, argv, env)
	code := 126
	if errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	return &runuserError{msg: fmt.Sprintf("failed to execute %s: %v", path, err), code: code}
}

// runuserEnv: a login shell starts from a fresh environment (TERM and -w
// names survive); otherwise the environment is kept and the identity
// variables are set, which is how smolvm exec -e values reach `runuser -u`.
func runuserEnv(o *runuserOpts, pw *passwdEntry, shell string) []string {
	ident := []string{"HOME=" + pw.home, "SHELL=" + shell, "USER=" + pw.name, "LOGNAME=" + pw.name}
	if !o.login {
		if o.preserve {
			return os.Environ()
		}
		return mergeEnv(os.Environ(), ident)
	}
	path := loginPathUser
	if pw.uid == 0 {
		path = loginPathRoot
	}
	env := append(ident, "PATH="+path)
	for _, k := range append([]string{"TERM"}, o.whitelist...) {
		if v, ok := os.LookupEnv(k); ok {
			env = mergeEnv(env, []string{k + "=" + v})
		}
	}
	return env
}

// switchUser sets groups, gid and uid. Without root on the host the sandbox
// has a single uid mapping: the simulator then starts the sandbox as the
// target user already (sandboxIdentity), and any other switch is refused.
func switchUser(pw *passwdEntry, groups []int) error {
	if os.Getuid() == pw.uid && os.Getgid() == pw.gid {
		if err := syscall.Setgroups(groups); err != nil && !errors.Is(err, syscall.EPERM) {
			return &runuserError{msg: fmt.Sprintf("cannot set groups: %v", err), code: 1}
		}
		return nil
	}
	if err := syscall.Setgroups(groups); err != nil {
		return notPermitted(pw, err)
	}
	if err := syscall.Setresgid(pw.gid, pw.gid, pw.gid); err != nil {
		return notPermitted(pw, err)
	}
	if err := syscall.Setresuid(pw.uid, pw.uid, pw.uid); err != nil {
		return notPermitted(pw, err)
	}
	return nil
}

func notPermitted(pw *passwdEntry, err error) error {
	return &runuserError{code: 1, msg: fmt.Sprintf(
		"cannot switch to user %s (uid %d): %v (the simulator switches users only when it runs as root; see docs/smolvm.md)",
		pw.name, pw.uid, err)}
}

type passwdEntry struct {
	name        string
	uid, gid    int
	home, shell string
}

func lookupUser(passwdPath, name string) (*passwdEntry, error) {
	f, err := os.Open(passwdPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad passwd entry for %s", name)
		}
		return &passwdEntry{name: name, uid: uid, gid: gid, home: fields[5], shell: fields[6]}, nil
	}
	return nil, fmt.Errorf("no such user: %s", name)
}

// userGroups: the primary gid plus every group listing the user.
func userGroups(groupPath, user string, gid int) ([]int, error) {
	groups := []int{gid}
	data, err := os.ReadFile(groupPath)
	if errors.Is(err, fs.ErrNotExist) {
		return groups, nil
	}
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Split(line, ":")
		if len(fields) < 4 {
			continue
		}
		g, err := strconv.Atoi(fields[2])
		if err != nil || g == gid {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m == user {
				groups = append(groups, g)
			}
		}
	}
	return groups, nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPathIn resolves a command against the target environment's PATH (not
// ours: the login PATH of the user is what counts).
func lookPathIn(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if _, err := os.Stat(file); err != nil {
			return "", err
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
