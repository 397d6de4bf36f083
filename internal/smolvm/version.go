package smolvm

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MinVersion is the oldest smolvm whose CLI contract this driver was tested
// against (docs/smolvm.md).
const MinVersion = "1.9.0"

var versionPattern = regexp.MustCompile(`\b(\d+)\.(\d+)\.(\d+)\b`)

// Version runs `smolvm --version` and returns the version number it prints
// ("smolvm 1.9.3 ..." → "1.9.3").
func (c *CLI) Version(ctx context.Context) (string, error) {
	out, err := c.run(ctx, verbVersion, versionArgv())
	if err != nil {
		return "", err
	}
	v := parseVersion(out)
	if v == "" {
		return "", &Error{Verb: verbVersion, Class: ClassUnsupportedVersion, ExitCode: 0,
			Message: fmt.Sprintf("cannot find a version number in %q", firstLine(out, 80))}
	}
	return v, nil
}

// CheckVersion runs `smolvm --version` once and fails clearly when the binary
// is missing (ClassNotInstalled: "smolvm not found at ...") or older than
// MinVersion (ClassUnsupportedVersion). Call it at startup.
func (c *CLI) CheckVersion(ctx context.Context) (string, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	if compareVersions(v, MinVersion) < 0 {
		err := &Error{Verb: verbVersion, Class: ClassUnsupportedVersion, ExitCode: 0,
			Message: fmt.Sprintf("smolvm %s at %q is older than the minimum supported version %s", v, c.path(), MinVersion)}
		observe(verbVersion, 0, err)
		return v, err
	}
	return v, nil
}

func parseVersion(out string) string {
	m := versionPattern.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[0]
}

// compareVersions compares dotted numeric versions (pre-release suffixes are
// not part of what parseVersion returns).
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n]
	}
	return s
}
