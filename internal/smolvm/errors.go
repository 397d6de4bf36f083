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
	ErrNotFound       ErrorClass = "not_found"
	ErrAlreadyExists  ErrorClass = "already_exists"
	ErrNotRunning     ErrorClass = "not_running"
	ErrKVMUnavailable ErrorClass = "kvm_unavailable"
	ErrTimeout        ErrorClass = "timeout"
	ErrInvalidName    ErrorClass = "invalid_name"
	ErrUsage          ErrorClass = "usage"
	ErrOther          ErrorClass = "other"
	// ErrCanceled: the caller's context was canceled (not a deadline).
	ErrCanceled ErrorClass = "canceled"
	// ErrNotInstalled: the smolvm binary could not be started at all.
	ErrNotInstalled ErrorClass = "not_installed"
	// ErrUnsupportedVersion: smolvm --version is older than MinVersion or
	// unparseable.
	ErrUnsupportedVersion ErrorClass = "unsupported_version"
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
// and ErrOther for any other error.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Class
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ErrCanceled
	}
	return ErrOther
}

func IsNotFound(err error) bool      { return ClassOf(err) == ErrNotFound }
func IsAlreadyExists(err error) bool { return ClassOf(err) == ErrAlreadyExists }
func IsNotRunning(err error) bool    { return ClassOf(err) == ErrNotRunning }
func IsTimeout(err error) bool       { return ClassOf(err) == ErrTimeout }

// maxMessageLen bounds Error.Message: smolvm may append long "Caused by"
// chains, and a message is for humans and logs.
const maxMessageLen = 1024

// smolvmErrorMessage returns the text after "Error: " when stderr starts with
// smolvm's error prefix (the contract's only marker of smolvm's own failure).
func smolvmErrorMessage(stderrHead string) (string, bool) {
	const prefix = "Error: "
	if !strings.HasPrefix(stderrHead, prefix) {
		return "", false
	}
	msg := stderrHead[len(prefix):]
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen] + "..."
	}
	return msg, true
}

// fromErrorLine drops what a verb printed on stderr before smolvm's own
// "Error: " line (fork prints its progress there first). Only for verbs
// whose stderr is smolvm's alone: an exec's stderr is the guest's.
func fromErrorLine(stderr string) string {
	if i := strings.Index(stderr, "\nError: "); i >= 0 && !strings.HasPrefix(stderr, "Error: ") {
		return stderr[i+1:]
	}
	return stderr
}

// classifyMessage maps smolvm's error text to a class. The patterns are the
// stable parts of the texts in the contract; anything unknown is ErrOther.
func classifyMessage(msg string) ErrorClass {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "kvm not available"),
		strings.Contains(m, "kvm permission denied"),
		strings.Contains(m, "/dev/kvm"):
		return ErrKVMUnavailable
	case strings.Contains(m, "already exists"):
		return ErrAlreadyExists
	case strings.Contains(m, "is not running"):
		return ErrNotRunning
	case strings.HasPrefix(m, "vm not found"),
		strings.Contains(m, "' not found"),
		strings.Contains(m, "not found:"):
		return ErrNotFound
	case strings.Contains(m, "invalid machine name"),
		strings.Contains(m, "machine name must"),
		strings.Contains(m, "invalid vm name"):
		return ErrInvalidName
	case strings.Contains(m, "timed out"), strings.Contains(m, "timeout"):
		return ErrTimeout
	}
	return ErrOther
}

// knownSmolvmFailure reports whether an "Error: " message produced with exit
// 1 by `machine exec` is smolvm's own rather than the guest's. Guest programs
// print "Error: ..." and exit 1 all the time (node, python tracebacks), so
// beyond the contract's necessary condition (stderr starts with "Error: ") the
// message must also look like one of smolvm's error families.
func knownSmolvmFailure(msg string) bool {
	for _, p := range smolvmErrorFamilies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// smolvmErrorFamilies are the prefixes of smolvm's own error messages (its
// error enum's Display forms) that `machine exec` can produce.
var smolvmErrorFamilies = []string{
	"agent operation failed: ",
	"config operation failed: ",
	"vm not found: ",
	"kvm not available: ",
	"kvm permission denied: ",
}

// newUsageError reports a request the driver refuses to turn into a command
// line. Messages name the offending field, never its value.
func newUsageError(verb, format string, args ...any) *Error {
	return &Error{Verb: verb, Class: ErrUsage, ExitCode: -1, Message: fmt.Sprintf(format, args...)}
}
