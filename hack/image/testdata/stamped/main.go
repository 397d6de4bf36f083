// A tiny stand-in for the manager in hack/image's test: static, and
// stamped with the version like the manager.
package main

import (
	"fmt"

	"github.com/bot-bottle/bottle-controller/internal/version"
)

func main() { fmt.Println(version.Version, version.Revision) }
