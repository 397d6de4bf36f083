// Command source-access renders config/source-access from its one setting,
// config/source-access/namespaces.txt (see internal/sourceaccess). Run by
// `make manifests`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bot-bottle/bottle-controller/internal/sourceaccess"
)

func main() {
	dir := "config/source-access"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := run(dir); err != nil {
		fmt.Fprintf(os.Stderr, "source-access: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	f, err := os.Open(filepath.Join(dir, sourceaccess.NamespacesFile))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	namespaces, err := sourceaccess.ReadNamespaces(f)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	for name, data := range sourceaccess.Render(namespaces) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
