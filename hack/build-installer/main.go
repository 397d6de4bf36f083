// Command build-installer writes the single-file installer (`make
// build-installer IMG=…` → dist/install.yaml): config/default rendered with
// kustomize's Go API and the agent image set to -img.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bot-bottle/bottle-controller/internal/installer"
)

func main() {
	dir := flag.String("dir", "config/default", "Kustomization to render.")
	img := flag.String("img", "", "Agent image (NAME[:TAG][@DIGEST]); empty keeps the one config/manager names.")
	out := flag.String("out", "dist/install.yaml", "File to write; - for stdout.")
	flag.Parse()
	if err := run(*dir, *img, *out); err != nil {
		fmt.Fprintf(os.Stderr, "build-installer: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, img, out string) error {
	y, err := installer.Build(dir, img)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(y)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, y, 0o644)
}
