package smolvm

import (
	"os/exec"
	"strings"
	"testing"
)

// FuzzQuote: quote(s) must reach a real POSIX shell as exactly s. Runs its
// seed corpus as a normal unit test; `go test -fuzz=FuzzQuote` explores.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{
		"", "plain", "two words", "'", "''", "it's", `"double"`, `back\slash`, `\'`,
		"$HOME", "${PATH}", "$(id)", "`id`", "a;b", "a&&b", "a|b", "a>b", "*", "?", "[a]", "~", "#x",
		"\n", "line1\nline2\n", "\t", "\r\n", "-", "-n", "--", "-e \\n", "%s", "%%",
		"unicode: héllo 世界 🙂", "\xff\xfe invalid utf8", "\x01\x1b[31m", "!", "!!", "{a,b}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("argv cannot carry NUL")
		}
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+quote(s)).Output()
		if err != nil {
			t.Fatalf("sh failed for %q: %v", s, err)
		}
		if string(out) != s {
			t.Fatalf("round trip changed %q into %q (quoted %s)", s, out, quote(s))
		}
	})
}

func TestQuoteArgvJoin(t *testing.T) {
	argv := []string{"printf", "%s|", "a b", "it's", "$x", "-n"}
	out, err := exec.Command("/bin/sh", "-c", quoteArgv(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a b|it's|$x|-n|" {
		t.Fatalf("got %q", out)
	}
}
