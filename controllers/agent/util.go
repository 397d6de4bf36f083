package agent

import (
	"strings"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// toValidUTF8 makes guest text safe for status: invalid bytes become U+FFFD
// (the API server rejects strings that are not UTF-8), and so do DEL, the C1
// controls and U+FFFE/U+FFFF. JSON leaves those unescaped and the API
// server's server-side apply path reads the body as YAML, which refuses them
// ("control characters are not allowed"): one such byte in a step's output
// would otherwise make every status write fail. C0 controls are kept; JSON
// escapes them.
func toValidUTF8(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, yamlUnsafe) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if yamlUnsafe(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func yamlUnsafe(r rune) bool {
	return (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff
}

// tailForStatus is the end of s, made safe for status, that fits budget
// bytes once JSON-escaped, starting at a line boundary when one lies within
// it (smolvm.TailWithin).
func tailForStatus(s string, budget int) string {
	return smolvm.TailWithin(toValidUTF8(s), budget)
}
