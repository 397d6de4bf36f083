package smolvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrorClass says what kind of failure an *Error is, so callers branch on a
// value instead of parsing smolvm's text. The values double as the `class`
// label of smolvm_command_failures_total.
type ErrorClass string

const (
	ClassNotFound       ErrorClass = "not_found"
	ClassAlreadyExists  ErrorClass = "already_exists"
	ClassNotRunning     ErrorClass = "not_running"
	ClassKVMUnavailable ErrorClass = "kvm_unavailable"
	ClassTimeout        ErrorClass = "timeout"
	ClassInvalidName    ErrorClass = "invalid_name"
	ClassUsage          ErrorClass = "usage"
	ClassOther          ErrorClass = "other"
	// ClassUnresolvableHost: create could not resolve an --allow-host name
	// on the node (smolvm resolves each at create, 10 s each, and any
	// failure is fatal: smolvm:src/cli/machine.rs:82-110,
	// src/smolfile.rs:38-80). The message names the host.
	ClassUnresolvableHost ErrorClass = "unresolvable_host"
	// ClassBusy: an interactive session found the machine's connections in
	// use (connlimit.go); nothing ran.
	ClassBusy ErrorClass = "busy"
	// ClassCanceled: the caller's context was canceled (not a deadline).
	ClassCanceled ErrorClass = "canceled"
	// ClassNotInstalled: the smolvm binary could not be started at all.
	ClassNotInstalled ErrorClass = "not_installed"
	// ClassUnsupportedVersion: smolvm --version is older than MinVersion or
	// unparseable.
	ClassUnsupportedVersion ErrorClass = "unsupported_version"
)

// Error is a failure of smolvm itself (or of the driver before it ran
// smolvm). A guest command's non-zero exit is never an Error.
type Error struct {
	// Verb is the driver operation: "create", "start", "exec", ...
	Verb  string
	Class ErrorClass
	// ExitCode of the smolvm process; -1 when it did not run or was killed.
	ExitCode int
	// Message is smolvm's own error text (the part after "Error: "), or a
	// description written by the driver. It never holds argv, env values or
	// scripts.
	Message string
	// Err is the underlying cause (context.DeadlineExceeded, exec.ErrNotFound,
	// ...), for errors.Is.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smolvm")
	if e.Verb != "" {
		b.WriteString(" " + e.Verb)
	}
	b.WriteString(": ")
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(string(e.Class))
	}
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (%s, exit %d)", e.Class, e.ExitCode)
	} else {
		fmt.Fprintf(&b, " (%s)", e.Class)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of the first *Error in err's chain, "" for nil,
// and ClassOther for any other error.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Class
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	return ClassOther
}

func IsNotFound(err error) bool      { return ClassOf(err) == ClassNotFound }
func IsAlreadyExists(err error) bool { return ClassOf(err) == ClassAlreadyExists }
func IsNotRunning(err error) bool    { return ClassOf(err) == ClassNotRunning }
func IsTimeout(err error) bool       { return ClassOf(err) == ClassTimeout }

// maxMessageLen bounds Error.Message: smolvm may append long "Caused by"
// chains, and a message is for humans and logs.
const maxMessageLen = 1024

// smolvmErrorLine finds smolvm's own error in the stderr of a verb other
// than exec, where every byte is smolvm's: the last line that starts with
// "Error: ". smolvm prints it last, as it exits 1 (smolvm:src/main.rs:212-216),
// after whatever it wrote on the way: `Starting machine 'N'...`
// (src/cli/vm_common.rs:1404), pull progress (vm_common.rs:1512), the vCPU
// warning (src/data/resources.rs:91-97), tracing warnings. The tail is
// searched first (it holds the end of a long stderr), then the head.
func smolvmErrorLine(head, tail string) (string, bool) {
	if msg, ok := lastLineWithPrefix(tail, smolvmErrorPrefix); ok {
		return msg, true
	}
	return lastLineWithPrefix(head, smolvmErrorPrefix)
}

// smolvmErrorPrefix starts smolvm's own error (src/main.rs:214).
const smolvmErrorPrefix = "Error: "

// lastLineWithPrefix returns the message of the last line of text that
// starts with prefix: that line's rest, trimmed and bounded. Only its first
// line is kept: smolvm's longer messages add hint lines ("Try: sudo
// modprobe kvm ...", src/platform/linux.rs:31-35) after the one that says
// what failed.
func lastLineWithPrefix(text, prefix string) (string, bool) {
	for rest := text; rest != ""; {
		i := strings.LastIndex(rest, prefix)
		if i < 0 {
			return "", false
		}
		if i == 0 || rest[i-1] == '\n' {
			return trimMessage(rest[i+len(prefix):]), true
		}
		rest = rest[:i]
	}
	return "", false
}

// lastLine returns text's last non-empty line.
func lastLine(text string) string {
	text = strings.TrimRight(text, "\r\n\t ")
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		return text[i+1:]
	}
	return text
}

func trimMessage(msg string) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen] + "..."
	}
	return msg
}

// classifyMessage maps smolvm's error text to a class. The patterns are the
// stable parts of the texts in the contract; anything unknown is ClassOther.
func classifyMessage(msg string) ErrorClass {
	m := strings.ToLower(msg)
	switch {
	case strings.HasPrefix(m, "config operation failed: --allow-host: "):
		return ClassUnresolvableHost
	case strings.Contains(m, "kvm not available"),
		strings.Contains(m, "kvm permission denied"),
		strings.Contains(m, "/dev/kvm"):
		return ClassKVMUnavailable
	case strings.Contains(m, "already exists"):
		return ClassAlreadyExists
	case strings.Contains(m, "is not running"):
		return ClassNotRunning
	case strings.HasPrefix(m, "vm not found"),
		strings.Contains(m, "' not found"),
		strings.Contains(m, "not found:"):
		return ClassNotFound
	case strings.Contains(m, "invalid machine name"),
		strings.Contains(m, "machine name must"),
		strings.Contains(m, "invalid vm name"):
		return ClassInvalidName
	case strings.Contains(m, "timed out"), strings.Contains(m, "timeout"):
		return ClassTimeout
	}
	return ClassOther
}

// knownSmolvmFailure reports whether an "Error: " message could be smolvm's
// own failure of `machine exec` rather than a guest program's: guest
// programs print "Error: ..." and exit 1 all the time (node, python
// tracebacks), so the message must look like one of the error families exec
// can produce. It is a necessary condition only: see execFailure.
func knownSmolvmFailure(msg string) bool {
	for _, p := range smolvmErrorFamilies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// smolvmErrorFamilies are the prefixes of smolvm's own error messages (its
// error enum's Display forms, smolvm:src/data/errors.rs:68-219) that
// `machine exec` can produce: a missing or stopped machine
// (src/cli/vm_common.rs:66-119), a secret it cannot resolve
// (src/cli/machine.rs:237-276, src/secrets.rs:397-453), and a connection
// that fails or closes mid-command (src/agent/client.rs:1468-1506). exec
// never boots a VM, so "kvm not available" is never exec's own.
var smolvmErrorFamilies = []string{
	"agent operation failed: ",
	"config operation failed: ",
	"vm not found: ",
	"io operation failed: ",
}

// newUsageError reports a request the driver refuses to turn into a command
// line. Messages name the offending field, never its value.
func newUsageError(verb, format string, args ...any) *Error {
	return &Error{Verb: verb, Class: ClassUsage, ExitCode: -1, Message: fmt.Sprintf(format, args...)}
}
