// Package version holds the build's version, stamped by the linker:
//
//	-ldflags "-X github.com/bot-bottle/bottle-controller/internal/version.Version=v0.2.0
//	          -X github.com/bot-bottle/bottle-controller/internal/version.Revision=<commit>"
//
// (make image, make release and the Dockerfile do).
package version

// Version and Revision of this build; "dev" and "" when not stamped.
var (
	Version  = "dev"
	Revision = ""
)

// LDFlags returns the -ldflags value that stamps version and revision.
func LDFlags(version, revision string) string {
	const pkg = "github.com/bot-bottle/bottle-controller/internal/version"
	return "-s -w -X " + pkg + ".Version=" + version + " -X " + pkg + ".Revision=" + revision
}
