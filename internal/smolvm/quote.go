package smolvm

import "strings"

// quote returns s as one POSIX shell word in single quotes. Inside single
// quotes nothing is special except the quote itself, so each quote becomes:
// close the quoted run, a backslash-escaped quote, reopen. The result
// survives any POSIX shell parse byte for byte (NUL excepted: argv cannot
// carry it).
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteArgv joins argv into a shell command line whose words are exactly argv.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}
