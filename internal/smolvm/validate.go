package smolvm

import (
	"path"
	"strings"
)

// Validation of everything that reaches a smolvm or runuser command line:
// names and values that could be read as flags, NUL bytes, and paths.

func checkName(verb, name string) error {
	if err := ValidateMachineName(name); err != nil {
		err.(*Error).Verb = verb
		return err
	}
	return nil
}

func checkNoNUL(verb, field, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return newUsageError(verb, "%s contains a NUL byte", field)
	}
	return nil
}

// checkValue rejects create values that argv cannot carry or smolvm would
// read as a flag. Messages name the field, never the value.
func checkValue(field, v string, nonEmpty bool) error {
	const verb = verbCreate
	if nonEmpty && v == "" {
		return newUsageError(verb, "%s is empty", field)
	}
	if strings.HasPrefix(v, "-") {
		return newUsageError(verb, "%s starts with '-'", field)
	}
	return checkNoNUL(verb, field, v)
}

// checkImage rejects an image smolvm would read as a file on the host
// rather than a registry reference (smolvm:src/data/image_source.rs:49-82):
// stdin ("-"), a path ("/", "./", "../") or an archive name. The API server
// refuses the same forms in spec.image; this is the driver's own guard for
// every other caller.
func checkImage(image string) error {
	if err := checkValue("image", image, true); err != nil {
		return err
	}
	for _, p := range []string{"/", "./", "../"} {
		if strings.HasPrefix(image, p) {
			return newUsageError(verbCreate, "image is a host path, not a registry reference")
		}
	}
	for _, s := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(image, s) {
			return newUsageError(verbCreate, "image names an archive file, not a registry reference")
		}
	}
	return nil
}

// checkEnvVar: names must be shell identifiers, because in login mode they
// are spliced unquoted into `export NAME=...` lines.
func checkEnvVar(verb string, e EnvVar) error {
	if !validEnvName(e.Name) {
		return newUsageError(verb, "invalid environment variable name")
	}
	return checkNoNUL(verb, "environment value of "+e.Name, e.Value)
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// validUserName follows the shadow-utils rule (NAME_REGEX) so the name can
// never be read as a runuser option.
func validUserName(u string) bool {
	if u == "" || len(u) > 32 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.'):
		case i == len(u)-1 && i > 0 && c == '$':
		default:
			return false
		}
	}
	return true
}

func checkGuestPath(verb, field, p string) error {
	if !path.IsAbs(p) {
		return newUsageError(verb, "%s must be an absolute path", field)
	}
	return checkNoNUL(verb, field, p)
}

func checkHostPath(verb, p string) error {
	if !path.IsAbs(p) {
		return newUsageError(verb, "host path must be absolute")
	}
	if strings.ContainsRune(p, ':') {
		return newUsageError(verb, "host path contains ':' (smolvm would read it as a guest path)")
	}
	return checkNoNUL(verb, "host path", p)
}
