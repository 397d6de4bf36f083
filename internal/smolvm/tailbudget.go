package smolvm

import (
	"strings"
	"unicode/utf8"
)

// TailWithin returns the longest suffix of s whose JSON encoding (as
// encoding/json and the API server write it, without the quotes) takes at
// most jsonBudget bytes, so a status field holding it has a known size in
// etcd however the output is made: '<', '>', '&', control characters,
// U+2028/U+2029 and invalid UTF-8 bytes take 6 bytes each, '"', '\\', \b, \f,
// \n, \r, \t take 2, other characters their UTF-8 length. s itself is
// returned when it fits. A cut suffix starts at a whole character and, when
// it holds a line break before its last byte, just after the first one, so a
// tail never begins mid-line when it need not.
func TailWithin(s string, jsonBudget int) string {
	if jsonBudget <= 0 {
		return ""
	}
	used, i := 0, len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		c := jsonRuneLen(r, size)
		if used+c > jsonBudget {
			return startAtLine(s[i:])
		}
		used += c
		i -= size
	}
	return s
}

// jsonRuneLen mirrors encoding/json's string escaping with HTML escaping on
// (its default, used by the API server's JSON serializer).
func jsonRuneLen(r rune, size int) int {
	switch {
	case r == utf8.RuneError && size == 1:
		return 6 // \ufffd
	case r == '"', r == '\\', r == '\b', r == '\f', r == '\n', r == '\r', r == '\t':
		return 2
	case r < 0x20, r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029':
		return 6
	}
	return size
}

// startAtLine drops a leading partial line from a tail that was cut: it
// returns what follows the first '\n', unless that '\n' is the tail's last
// byte (then the partial line is all there is).
func startAtLine(tail string) string {
	if j := strings.IndexByte(tail, '\n'); j >= 0 && j < len(tail)-1 {
		return tail[j+1:]
	}
	return tail
}
