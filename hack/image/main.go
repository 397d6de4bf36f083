// Command image builds the agent image without a container engine (`make
// image`): it compiles cmd/manager statically (CGO_ENABLED=0) for the
// platform, then writes a docker-load tarball and an OCI image layout.
//
//	go run ./hack/image -img ghcr.io/bot-bottle/bottle-agent:v0.2.0 -version v0.2.0 -out dist/image
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/ociimage"
	"github.com/bot-bottle/bottle-controller/internal/version"
)

func main() {
	img := flag.String("img", "ghcr.io/bot-bottle/bottle-agent:dev", "Image reference to tag the tarball with.")
	ver := flag.String("version", "dev", "Version stamped into the binary and the labels.")
	rev := flag.String("revision", "", "Source revision (git commit) stamped into the binary and the labels.")
	platform := flag.String("platform", "linux/"+runtime.GOARCH, "os/arch of the image.")
	out := flag.String("out", "dist/image", "Output directory: bottle-agent.tar and oci/.")
	created := flag.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "Creation time, Unix seconds (default $SOURCE_DATE_EPOCH, else now).")
	// hack/node-up.sh packs its pause program (./hack/pause) the same way.
	pkg := flag.String("pkg", "./cmd/manager", "Go package packed as the image's entrypoint.")
	flag.Parse()
	if err := run(*img, *ver, *rev, *platform, *out, *created, *pkg); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// run builds pkg (./cmd/manager) statically and packs it as /manager.
func run(img, ver, rev, platform, out, created, pkg string) error {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok {
		return fmt.Errorf("-platform %q: want os/arch", platform)
	}
	when := time.Now().UTC().Truncate(time.Second)
	if created != "" {
		secs, err := strconv.ParseInt(created, 10, 64)
		if err != nil {
			return fmt.Errorf("-created %q: %w", created, err)
		}
		when = time.Unix(secs, 0).UTC()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(out, "manager-"+goos+"-"+goarch)
	build := exec.Command("go", "build", "-trimpath", "-ldflags", version.LDFlags(ver, rev), "-o", bin, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	license := "LICENSE"
	if _, err := os.Stat(license); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	image, err := ociimage.Build(ociimage.Options{
		Binary: bin, License: license, OS: goos, Arch: goarch,
		Version: ver, Revision: rev, Created: when,
	})
	if err != nil {
		return err
	}
	tarPath := filepath.Join(out, "bottle-agent.tar")
	if err := ociimage.WriteTarball(tarPath, img, image); err != nil {
		return err
	}
	layoutDir := filepath.Join(out, "oci")
	if err := os.RemoveAll(layoutDir); err != nil {
		return err
	}
	if err := ociimage.WriteLayout(layoutDir, img, image); err != nil {
		return err
	}
	digest, err := image.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n  tarball: %s (docker load -i / podman load -i)\n  OCI layout: %s (crane push / skopeo copy oci:%s docker://%s)\n",
		img, digest, tarPath, layoutDir, layoutDir, img)
	return nil
}
