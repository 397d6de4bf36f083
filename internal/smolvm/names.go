package smolvm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxMachineNameLen is smolvm's limit on machine names.
const MaxMachineNameLen = 128

// machineNameHashLen is the number of hex digits of the uid hash in
// MachineNameFor: 40 bits keeps collisions negligible for one node.
const machineNameHashLen = 10

// machineNamePrefixLen keeps generated names readable in `smolvm machine ls`.
const machineNamePrefixLen = 60

// ValidateMachineName applies smolvm's rules: at most 128 characters of
// [A-Za-z0-9_-], starting with a letter or digit, no trailing '-', no "--".
// A name that passes can never be read as a flag.
func ValidateMachineName(name string) error {
	reason := machineNameProblem(name)
	if reason == "" {
		return nil
	}
	shown := name
	if len(shown) > 40 {
		shown = shown[:40] + "..."
	}
	return &Error{Class: ErrInvalidName, ExitCode: -1,
		Message: fmt.Sprintf("invalid machine name %q: %s", shown, reason)}
}

func machineNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxMachineNameLen:
		return fmt.Sprintf("longer than %d characters", MaxMachineNameLen)
	case !isAlnum(name[0]):
		return "must start with a letter or digit"
	case strings.HasSuffix(name, "-"):
		return "must not end with '-'"
	case strings.Contains(name, "--"):
		return "must not contain '--'"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '-' && c != '_' {
			return "only letters, digits, '-' and '_' are allowed"
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// MachineNameFor derives the machine name of a Kubernetes object: a readable,
// sanitized "namespace-name" prefix plus '-' and 10 hex digits of
// sha256(uid). The hash makes the name unique per object (a re-created object
// with the same name gets a new uid, hence a new machine), the prefix makes it
// recognisable. The result always passes ValidateMachineName.
func MachineNameFor(namespace, name, uid string) string {
	key := uid
	if key == "" {
		// Without a uid the name is still deterministic, just not unique
		// across re-creations.
		key = namespace + "/" + name
	}
	sum := sha256.Sum256([]byte(key))
	suffix := hex.EncodeToString(sum[:])[:machineNameHashLen]

	prefix := sanitizeNamePart(namespace + "-" + name)
	if len(prefix) > machineNamePrefixLen {
		prefix = strings.TrimRight(prefix[:machineNamePrefixLen], "-_")
	}
	if prefix == "" {
		prefix = "m"
	}
	return prefix + "-" + suffix
}

// sanitizeNamePart maps anything outside [A-Za-z0-9_] to '-', collapses runs
// of '-', and trims leading non-alphanumerics and trailing '-'/'_' so that
// appending "-hash" can never produce "--".
func sanitizeNamePart(s string) string {
	var b strings.Builder
	lastDash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c) || c == '_':
			b.WriteByte(c)
			lastDash = false
		case !lastDash:
			b.WriteByte('-')
			lastDash = true
		}
	}
	out := b.String()
	out = strings.TrimLeftFunc(out, func(r rune) bool { return r > 0x7f || !isAlnum(byte(r)) })
	return strings.TrimRight(out, "-_")
}
