package kubectlbottle

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/util/exec"
)

// The error channel decodes as client-go's executor decodes it, so exit
// codes and refusals read the same as with kubectl exec.
func TestDecodeStatus(t *testing.T) {
	for _, tc := range []struct {
		name, message string
		code          int    // a CodeExitError with this code
		err           string // else an error containing this, "" for nil
	}{
		{"no status", ``, 0, ""},
		{"success", `{"status":"Success"}`, 0, ""},
		{"exit code", `{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}`, 7, ""},
		{"refusal", `{"status":"Failure","reason":"InternalError","message":"bottle \"b\" has no machine yet"}`, 0, `bottle "b" has no machine yet`},
		{"exit code out of range", `{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}`, 0, "invalid exit code value"},
		{"no exit code cause", `{"status":"Failure","reason":"NonZeroExitCode","details":{}}`, 0, "no ExitCode cause given"},
		{"no details", `{"status":"Failure","reason":"NonZeroExitCode"}`, 0, "details must be set"},
		{"unknown status", `{"status":"Maybe"}`, 0, "unknown error"},
		{"not JSON", `oops`, 0, "error stream protocol error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeStatus([]byte(tc.message))
			var ce exec.CodeExitError
			switch {
			case tc.code != 0:
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("got %v, want exit code %d", err, tc.code)
				}
			case tc.err == "":
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.err) || errors.As(err, &ce):
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}
