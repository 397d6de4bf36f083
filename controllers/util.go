package controllers

import (
	"strings"
	"unicode/utf8"
)

// toValidUTF8 replaces invalid bytes: a step may print binary, and the API
// server rejects strings that are not UTF-8.
func toValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// jsonSize is how many bytes a rune takes in the API server's JSON: Go's
// encoder escapes '<', '>', '&', U+2028/9 and control characters as \uXXXX
// (6 bytes), and '"', '\\', \n, \r, \t as two.
func jsonSize(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029:
		return 6
	case r == utf8.RuneError:
		return 3
	default:
		return utf8.RuneLen(r)
	}
}

// tailForStatus is the end of s, made valid UTF-8, that fits budget bytes
// once JSON-escaped. When the cut falls mid-line and a line boundary lies
// within what is kept, the tail starts after it, so the first line is whole.
func tailForStatus(s string, budget int) string {
	s = toValidUTF8(s)
	size, start := 0, len(s)
	for start > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:start])
		if size+jsonSize(r) > budget {
			break
		}
		size += jsonSize(r)
		start -= n
	}
	if start == 0 {
		return s
	}
	tail := s[start:]
	if s[start-1] == '\n' {
		return tail
	}
	if nl := strings.IndexByte(tail, '\n'); nl >= 0 && nl+1 < len(tail) {
		return tail[nl+1:]
	}
	return tail
}
