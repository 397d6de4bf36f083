// Package installer renders the single-file installer (dist/install.yaml)
// from config/default with kustomize's Go API, so building it needs no
// kustomize or kubectl binary.
package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// DefaultImage is the agent image config/manager names; Build replaces it.
const DefaultImage = "ghcr.io/bot-bottle/bottle-agent"

// Build renders the kustomization in dir (normally config/default) with the
// agent image set to img ("" keeps the image the kustomization names). It
// returns the multi-document YAML kustomize prints.
func Build(dir, img string) ([]byte, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	target := dir
	if img != "" {
		// A throw-away overlay that only sets the image, as
		// `kustomize edit set image` would, without editing the checkout.
		overlay, err := os.MkdirTemp("", "bottle-installer-")
		if err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(overlay) }()
		images, err := imageOverride(img)
		if err != nil {
			return nil, err
		}
		// kustomize refuses absolute resource paths.
		rel, err := filepath.Rel(overlay, dir)
		if err != nil {
			return nil, err
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " +
			quote(filepath.ToSlash(rel)) + "\nimages:\n" + images
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
			return nil, err
		}
		target = overlay
	}
	// Legacy order, as `kustomize build` prints it: Namespaces and CRDs
	// first, so one `kubectl apply -f` of the file succeeds.
	o := krusty.MakeDefaultOptions()
	o.Reorder = krusty.ReorderOptionLegacy
	k := krusty.MakeKustomizer(o)
	m, err := k.Run(filesys.MakeFsOnDisk(), target)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return m.AsYaml()
}

// imageOverride is the images: entry replacing DefaultImage with img
// (NAME[:TAG][@DIGEST]).
func imageOverride(img string) (string, error) {
	if strings.ContainsAny(img, " \t\n\"'") {
		return "", fmt.Errorf("image %q: must not contain whitespace or quotes", img)
	}
	name, digest, _ := strings.Cut(img, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	if name == "" {
		return "", fmt.Errorf("image %q has no name", img)
	}
	s := "- name: " + DefaultImage + "\n  newName: " + quote(name) + "\n"
	if tag != "" {
		s += "  newTag: " + quote(tag) + "\n"
	}
	if digest != "" {
		s += "  digest: " + quote(digest) + "\n"
	}
	return s, nil
}

func quote(s string) string { return `"` + s + `"` }
