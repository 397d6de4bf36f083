// Package ociimage builds the agent's container image without a container
// engine or a registry (`make image`): the static manager binary as the only
// layer on an empty base, with its entrypoint, user, labels and version in
// the image config. It writes a tarball `docker load`/`podman load` accept
// and an OCI image layout `crane push`/`skopeo copy` accept.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed parts of the image, shared with the Dockerfile.
const (
	// BinaryPath is where the manager lives and the entrypoint.
	BinaryPath = "/manager"
	// User is distroless' nonroot user: the image never runs as root by
	// default. The DaemonSet asks for root explicitly (runAsUser: 0) because
	// the agent drives /dev/kvm and host cgroups.
	User   = "65532:65532"
	Source = "https://github.com/bot-bottle/bottle-controller"
)

// Options describe one image.
type Options struct {
	// Binary is the path of the static manager binary for Platform.
	Binary string
	// License, when set, is added as /LICENSE.
	License string
	// Platform of Binary (os/arch).
	OS, Arch string
	// Version and Revision are stamped into the labels.
	Version, Revision string
	// Created is the image creation time (use the commit time for
	// reproducible images).
	Created time.Time
}

// Labels returns the OCI annotations/labels of the image.
func Labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "bottle-agent",
		"org.opencontainers.image.description": "Node agent of the Bottle controller: runs smolvm microVMs for Bottles",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
}

// Build assembles the image.
func Build(o Options) (v1.Image, error) {
	if o.OS == "" || o.Arch == "" {
		return nil, fmt.Errorf("platform missing (os %q, arch %q)", o.OS, o.Arch)
	}
	files := []file{}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	files = append(files, file{path: BinaryPath, mode: 0o755, data: bin})
	if o.License != "" {
		lic, err := os.ReadFile(o.License)
		if err != nil {
			return nil, err
		}
		files = append(files, file{path: "/LICENSE", mode: 0o644, data: lic})
	}
	layer, err := tarLayer(files, o.Created)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "ociimage: " + BinaryPath, Comment: "static manager binary"},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = o.OS, o.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = nil
	cf.Config.User = User
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = Labels(o)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, Labels(o)).(v1.Image), nil
}

// WriteTarball writes img as a docker-load/podman-load tarball tagged ref.
func WriteTarball(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// WriteLayout writes img into an OCI image layout directory, annotated with
// its reference.
func WriteLayout(dir, ref string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
	}))
}

type file struct {
	path string
	mode int64
	data []byte
}

// tarLayer is one uncompressed-then-gzipped layer owned by root, with fixed
// timestamps so the same binary gives the same digest.
func tarLayer(files []file, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.path[1:],
			Mode:     f.mode,
			Size:     int64(len(f.data)),
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
