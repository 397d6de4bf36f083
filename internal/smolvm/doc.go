// Package smolvm drives the smolvm CLI (smol-machines/smolvm), which runs
// Linux microVMs, strictly through argv: no host shell ever parses a value.
//
// The CLI contract the driver follows is described in docs/smolvm.md. In
// short: every flag spelling lives in argv.go (copy: argv_copy.go), machine names are validated
// before they reach a command line, every process is killed together with its
// children when its context ends, captured output is bounded, and smolvm's
// own failures ("Error: ..." on stderr) are classified into ErrorClass values
// so callers never parse text.
package smolvm
