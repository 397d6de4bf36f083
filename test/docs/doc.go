// Package docs holds the tests of the repository's own documentation
// against the code: the repository map of DEVELOPMENT.md against `go list`,
// and the relative links of README.md, DEVELOPMENT.md and docs/*.md. They
// need no envtest and no sandbox.
package docs
