package smolvm

import (
	"fmt"
	"strings"
)

// MaxMachineNameLen is smolvm's limit on machine names.
const MaxMachineNameLen = 128

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
	return &Error{Class: ClassInvalidName, ExitCode: -1,
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
