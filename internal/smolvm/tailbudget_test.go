package smolvm

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func jsonSize(t testing.TB, s string) int {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - 2
}

func TestTailWithin(t *testing.T) {
	for _, c := range []struct {
		name   string
		in     string
		budget int
		want   string
	}{
		{"fits whole", "hello\nworld\n", 12 + 2, "hello\nworld\n"},
		{"exactly the budget", "abc", 3, "abc"},
		{"zero budget", "abc", 0, ""},
		{"negative budget", "abc", -1, ""},
		{"empty", "", 10, ""},
		{"cut without a line break keeps the partial line", "abcdef", 3, "def"},
		{"cut starts after the first line break", "one\ntwo\nthree\n", 12, "three\n"},
		{"a line break only at the end keeps the partial line", "xxxxxxxxx\n", 6, "xxxx\n"},
		{"'<' is six bytes", "ab<<", 12, "<<"},
		{"'<' does not fit in five", "a<", 5, ""},
		{"quotes and backslashes are two", `a"\`, 4, `"\`},
		{"tab and newline are two", "a\tb\nc", 5, "c"},
		{"other control characters are six", "a\x01b", 7, "\x01b"},
		{"U+2028 is six", "a\u2028b", 7, "\u2028b"},
		{"multi-byte characters are never split", "aé€😀", 7, "€😀"},
		{"a 4-byte character that does not fit is dropped whole", "a😀", 3, ""},
		{"an invalid byte is six (\\ufffd)", "a\xffb", 7, "\xffb"},
		{"a truncated sequence is two invalid bytes", "\xe2\x82b", 13, "\xe2\x82b"},
		{"the issue's '<' output", strings.Repeat("<", 1000), 4096, strings.Repeat("<", 682)},
		{"line cut after escaping", "<<<<\nok\n", 12, "ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := TailWithin(c.in, c.budget)
			if got != c.want {
				t.Fatalf("TailWithin(%q, %d) = %q, want %q", c.in, c.budget, got, c.want)
			}
			if !strings.HasSuffix(c.in, got) {
				t.Fatalf("%q is not a suffix of %q", got, c.in)
			}
			if n := jsonSize(t, got); c.budget > 0 && n > c.budget {
				t.Fatalf("JSON size %d over the budget %d", n, c.budget)
			}
		})
	}
}

func TestJSONLenMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "<>&", "\"\\\b\f\n\r\t", "\x00\x1f\x7f", "é€😀", "\u2028\u2029", "\xff\xe2\x82", "\xef\xbf\xbd"} {
		if got, want := jsonLen(s), jsonSize(t, s); got != want {
			t.Errorf("JSONLen(%q) = %d, encoding/json says %d", s, got, want)
		}
	}
}

// FuzzTailWithin: whatever the output, the tail fits the budget, is a suffix,
// and is the longest one that fits unless it was moved to a line start.
func FuzzTailWithin(f *testing.F) {
	f.Add("one\ntwo\n<three>\n", 9)
	f.Add("\xff\xe2\x82\xac<\u2028\"", 7)
	f.Fuzz(func(t *testing.T, s string, budget int) {
		budget %= 1 << 12
		got := TailWithin(s, budget)
		if !strings.HasSuffix(s, got) {
			t.Fatalf("%q is not a suffix of %q", got, s)
		}
		if budget <= 0 {
			if got != "" {
				t.Fatalf("budget %d gave %q", budget, got)
			}
			return
		}
		if n := jsonSize(t, got); n > budget {
			t.Fatalf("JSON size %d over the budget %d for %q", n, budget, s)
		}
		if jsonLen(got) != jsonSize(t, got) {
			t.Fatalf("JSONLen disagrees with encoding/json on %q", got)
		}
		if prev := s[:len(s)-len(got)]; prev != "" && !strings.HasSuffix(prev, "\n") {
			// Not moved to a line start: the previous character must not fit.
			r, size := utf8.DecodeLastRuneInString(prev)
			if jsonRuneLen(r, size)+jsonLen(got) <= budget {
				t.Fatalf("%q fits the budget %d with one more character of %q", got, budget, s)
			}
		}
	})
}

// jsonLen is the size of s JSON-encoded, without the quotes.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonRuneLen(r, size)
		i += size
	}
	return n
}
