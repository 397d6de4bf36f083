package smolvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Every error text of the CLI contract (docs), as smolvm prints it.
var contractErrors = []struct {
	stderr string
	class  ErrorClass
}{
	{"Error: kvm not available: KVM not available. Ensure KVM kernel module is loaded.\n", ClassKVMUnavailable},
	{"Error: kvm permission denied: Cannot access /dev/kvm (permission denied). Add your user to the kvm group.\n", ClassKVMUnavailable},
	{"Error: config operation failed: create machine: machine 'm1' already exists or is being created\n", ClassAlreadyExists},
	{"Error: vm not found: m1\n", ClassNotFound},
	{"Error: config operation failed: machine status: machine 'm1' not found\n", ClassNotFound},
	{"Error: agent operation failed: connect: machine 'm1' is not running. Use 'smolvm machine start --name m1' first.\n", ClassNotRunning},
	{"Error: config operation failed: create machine: invalid machine name 'a.b': name may only contain letters, digits, '-' and '_'\n", ClassInvalidName},
	{"Error: agent operation failed: exec: connection reset by peer\n", ClassOther},
	{"Error: something new\n\nCaused by:\n    0: deeper\n", ClassOther},
}

func TestClassifyContractErrors(t *testing.T) {
	c := New("smolvm")
	for _, tt := range contractErrors {
		e := c.failure(verbStart, outcome{exitCode: 1, stderrHead: tt.stderr})
		if e == nil || e.Class != tt.class || e.ExitCode != 1 {
			t.Errorf("%q: got %+v, want class %q", tt.stderr, e, tt.class)
			continue
		}
		if e.Message == "" || e.Message[0] == ' ' || e.Message[len(e.Message)-1] == '\n' {
			t.Errorf("message %q not trimmed to smolvm's line", e.Message)
		}
	}
}

func TestFailureOutcomes(t *testing.T) {
	c := New("/nonexistent/smolvm")
	usage := "error: unexpected argument '--allow-host' found\n\nUsage: smolvm machine create [OPTIONS] --name <NAME>\n\nFor more information, try '--help'.\n"
	valueLeak := "error: invalid value 'SECRET' for '--cpus <CPUS>': invalid digit\n\nUsage: smolvm machine create\n"
	tests := []struct {
		name  string
		o     outcome
		class ErrorClass
		msg   string
	}{
		{"success", outcome{exitCode: 0}, "", ""},
		{"usage names the flag", outcome{exitCode: 2, stderrHead: usage}, ClassUsage, "smolvm rejected the command line: unexpected argument '--allow-host'"},
		{"usage hides values", outcome{exitCode: 2, stderrHead: valueLeak}, ClassUsage, "smolvm rejected the command line"},
		{"silent failure", outcome{exitCode: 3}, ClassOther, "smolvm exited with status 3 without an error message"},
		{"deadline", outcome{exitCode: -1, ctxErr: context.DeadlineExceeded}, ClassTimeout, ""},
		{"canceled", outcome{exitCode: -1, ctxErr: context.Canceled}, ClassCanceled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := c.failure(verbCreate, tt.o)
			if tt.class == "" {
				if e != nil {
					t.Fatalf("unexpected %v", e)
				}
				return
			}
			if e == nil || e.Class != tt.class {
				t.Fatalf("got %v, want class %q", e, tt.class)
			}
			if tt.msg != "" && e.Message != tt.msg {
				t.Fatalf("message %q, want %q", e.Message, tt.msg)
			}
			if tt.o.ctxErr != nil && !errors.Is(e, tt.o.ctxErr) {
				t.Fatalf("%v does not wrap %v", e, tt.o.ctxErr)
			}
		})
	}
}

// exec passes the guest's exit code through; only smolvm's own failures
// become errors.
func TestExecFailureClassification(t *testing.T) {
	// No smolvm answers the status that confirms an exec's error line: the
	// line then stands on its text (oracle_test.go covers the confirmation).
	c := New("/nonexistent/smolvm")
	ctx := context.Background()
	tests := []struct {
		name    string
		o       outcome
		timeout bool
		class   ErrorClass // "" = a result, not an error
	}{
		{"guest exit 0", outcome{exitCode: 0}, true, ""},
		{"guest exit 1 plain", outcome{exitCode: 1, stderrHead: "ls: cannot access 'x'\n"}, true, ""},
		{"guest prints Error: and exits 1", outcome{exitCode: 1, stderrHead: "Error: Cannot find module 'x'\n"}, true, ""},
		{"guest exit 2", outcome{exitCode: 2, stderrHead: "grep: x: No such file or directory\n"}, true, ""},
		{"guest exit 124 without --timeout", outcome{exitCode: 124}, false, ""},
		{"smolvm timeout", outcome{exitCode: 124}, true, ClassTimeout},
		{"not running", outcome{exitCode: 1, stderrHead: contractErrors[5].stderr}, true, ClassNotRunning},
		{"vm not found", outcome{exitCode: 1, stderrHead: "Error: vm not found: m1\n"}, true, ClassNotFound},
		{"agent failure", outcome{exitCode: 1, stderrHead: "Error: agent operation failed: exec: connection reset by peer\n"}, true, ClassOther},
		{"clap usage", outcome{exitCode: 2, stderrHead: "error: unexpected argument '--timeout' found\n\nUsage: smolvm machine exec\n"}, true, ClassUsage},
		{"killed by signal", outcome{exitCode: -1}, true, ClassOther},
		{"smolvm's line not last: the guest's", outcome{exitCode: 1, stderrHead: "Error: vm not found: m1\nmore guest output\n"}, true, ""},
		{"kvm is never exec's own", outcome{exitCode: 1, stderrHead: "Error: kvm not available: no /dev/kvm\n"}, true, ""},
		{"connection closed", outcome{exitCode: 1, stderrHead: "guest output\nError: io operation failed: connection closed\n"}, true, ClassOther},
		{"a lowercase error: is the guest's", outcome{exitCode: 1, stderrHead: "error: io operation failed: connection closed\n"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var timeout time.Duration
			if tt.timeout {
				timeout = time.Minute
			}
			tt.o.stderrTail = tt.o.stderrHead
			e := c.execFailure(verbExec, ctx, "m1", tt.o, timeout)
			if tt.class == "" {
				if e != nil {
					t.Fatalf("guest result turned into an error: %v", e)
				}
				return
			}
			if e == nil || e.Class != tt.class {
				t.Fatalf("got %v, want %q", e, tt.class)
			}
		})
	}
}

// smolvm's error line is found wherever it is on a non-exec verb's stderr:
// after preambles, warnings and notes, and in the tail of a long stderr.
func TestFailureFindsTheErrorLineAnywhere(t *testing.T) {
	c := New("smolvm")
	long := strings.Repeat("progress 42%\r", 2000)
	for _, tt := range []struct {
		name, head, tail string
		class            ErrorClass
		msg              string
	}{
		{"after the start preamble, wrapped, with a hint line",
			"Starting machine 'm1'...\nError: agent operation failed: start machine: kvm not available: KVM not available. Ensure KVM kernel module is loaded.\nTry: sudo modprobe kvm\n", "",
			ClassKVMUnavailable, "agent operation failed: start machine: kvm not available: KVM not available. Ensure KVM kernel module is loaded."},
		{"after the vCPU warning",
			"warning: requested 32 vCPUs but the hypervisor supports at most 16; the VM will run with 16 vCPUs\nError: config operation failed: create machine: machine 'm1' already exists or is being created\n", "",
			ClassAlreadyExists, "config operation failed: create machine: machine 'm1' already exists or is being created"},
		{"only in the tail of a long stderr", long[:headLen], long[len(long)-100:] + "\nError: vm not found: m1\n",
			ClassNotFound, "vm not found: m1"},
		{"an unresolvable allow-host",
			"Error: config operation failed: --allow-host: failed to resolve 'h.invalid': failed to lookup address information\n", "",
			ClassUnresolvableHost, "config operation failed: --allow-host: failed to resolve 'h.invalid': failed to lookup address information"},
		{"'Error: ' inside a line is not smolvm's", "2026 WARN saw Error: vm not found: x\n", "", ClassOther, "smolvm exited with status 1 without an error message"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := c.failure(verbStart, outcome{exitCode: 1, stderrHead: tt.head, stderrTail: tt.tail})
			if e == nil || e.Class != tt.class || e.Message != tt.msg {
				t.Fatalf("got %+v, want %q %q", e, tt.class, tt.msg)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	nf := &Error{Verb: "delete", Class: ClassNotFound, ExitCode: 1, Message: "vm not found: m1"}
	wrapped := fmt.Errorf("reconcile: %w", nf)
	if !IsNotFound(wrapped) || IsAlreadyExists(wrapped) || IsNotRunning(wrapped) || IsTimeout(wrapped) {
		t.Fatal("helpers do not follow the chain")
	}
	if ClassOf(nil) != "" || ClassOf(errors.New("x")) != ClassOther || ClassOf(context.DeadlineExceeded) != ClassTimeout {
		t.Fatal("ClassOf of non-driver errors")
	}
	if got := nf.Error(); got != "smolvm delete: vm not found: m1 (not_found, exit 1)" {
		t.Fatalf("Error() = %q", got)
	}
	killed := &Error{Verb: "exec", Class: ClassTimeout, ExitCode: -1, Message: "deadline exceeded"}
	if got := killed.Error(); got != "smolvm exec: deadline exceeded (timeout)" {
		t.Fatalf("Error() = %q", got)
	}
}
