// Package docs holds the tests of the repository's own documentation
// against the code: the repository map of DEVELOPMENT.md against `go list`,
// the relative links of README.md, DEVELOPMENT.md and docs/*.md, and the
// package identifiers, repository paths and `kubectl bottle` invocations
// they quote. They need no envtest and no sandbox.
package docs
