package smolvmsim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The machine-private directories, bound read-write into every sandbox. The
// rest of the tree comes from the host read-only (/usr and its merged-usr
// symlinks), so "pulling" an image only creates these.
var privateDirs = []string{"etc", "home", "root", "tmp", "workspace", "opt", "run", "var"}

const (
	nodeUID = 1000
	nodeGID = 1000
)

// hostEtcBinds are mounted read-only from the host into the private /etc at
// every exec rather than copied: hundreds of symlinks into /usr (Debian's
// alternatives, the CA store) that only change with the host's /usr.
var hostEtcBinds = []string{"alternatives", "ssl/certs"}

// hostEtcFiles are copied from the host /etc: what shells, the dynamic
// linker, name lookup and TLS need. Symlinks are copied as symlinks (Debian's
// /etc/alternatives and /etc/ssl/certs point into /usr, which the sandbox has).
var hostEtcFiles = []string{
	"profile", "profile.d", "bash.bashrc", "bash_completion", "inputrc", "environment",
	"nsswitch.conf", "host.conf", "gai.conf", "protocols", "services", "networks",
	"resolv.conf", "localtime", "timezone", "shells", "login.defs", "debian_version", "os-release",
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "skel", "ssl/openssl.cnf", "ca-certificates.conf",
	"mime.types", "terminfo", "magic", "locale.alias", "locale.gen", "default",
}

// seedRootfs "pulls the image": it builds the private directories in a
// staging directory and renames it into place, so a crash leaves either no
// rootfs or a complete one.
func seedRootfs(root, hostname string) error {
	if _, err := os.Stat(root); err == nil {
		return nil
	}
	stage := root + ".pull"
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	if err := buildRootfs(stage, hostname); err != nil {
		_ = os.RemoveAll(stage)
		return err
	}
	return os.Rename(stage, root)
}

func buildRootfs(root, hostname string) error {
	for _, d := range privateDirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"var/tmp", "var/log", "var/cache", "var/lib", "var/mail", "home/node"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	etc := filepath.Join(root, "etc")
	for _, name := range hostEtcFiles {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(etc, name)), 0o755); err != nil {
			return err
		}
		if err := copyTree(filepath.Join("/etc", name), filepath.Join(etc, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("copy /etc/%s: %w", name, err)
		}
	}
	for _, name := range hostEtcBinds {
		if err := os.MkdirAll(filepath.Join(etc, name), 0o755); err != nil {
			return err
		}
	}
	shell := "/bin/bash"
	if _, err := os.Stat("/usr/bin/bash"); err != nil {
		shell = "/bin/sh"
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:" + shell + "\n" +
			fmt.Sprintf("node:x:%d:%d:node:/home/node:%s\n", nodeUID, nodeGID, shell) +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":    fmt.Sprintf("root:x:0:\nnode:x:%d:\nusers:x:100:\nnogroup:x:65534:\n", nodeGID),
		"shadow":   "root:*:19000:0:99999:7:::\nnode:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
		"hostname": sandboxHostname(hostname) + "\n",
		"hosts": "127.0.0.1\tlocalhost\n127.0.1.1\t" + sandboxHostname(hostname) + "\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\n",
		"machine-id": "",
	}
	if _, err := os.Lstat("/etc/resolv.conf"); err != nil {
		files["resolv.conf"] = "nameserver 127.0.0.53\n"
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if name == "shadow" {
			mode = 0o640
		}
		_ = os.Remove(filepath.Join(etc, name))
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), mode); err != nil {
			return err
		}
	}
	// Home directories get the skeleton dotfiles (.profile, .bashrc).
	for _, home := range []string{"root", "home/node"} {
		if err := copyTree("/etc/skel", filepath.Join(root, home)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "root"), 0o700); err != nil {
		return err
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(filepath.Join(root, d), 0o777|os.ModeSticky); err != nil {
			return err
		}
	}
	// The agent image's user owns its home and the workspace. Without root
	// the chown fails; in that mode every file maps to the sandbox user anyway.
	if hostIsRoot() {
		for _, d := range []string{"home/node", "workspace"} {
			if err := chownTree(filepath.Join(root, d), nodeUID, nodeGID); err != nil {
				return err
			}
		}
	}
	return nil
}

// sandboxHostname fits a machine name into a hostname (64 bytes).
func sandboxHostname(name string) string {
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-_")
	}
	return name
}

func hostIsRoot() bool { return os.Geteuid() == 0 }

// copyTree copies a file, symlink or directory tree, keeping permission bits.
func copyTree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.MkdirAll(dst, fi.Mode().Perm()|0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if errors.Is(err, fs.ErrPermission) {
			return nil // unreadable without root: not needed by a shell
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		return os.Chmod(dst, fi.Mode().Perm())
	case fi.Mode().IsRegular():
		return copyFile(src, dst, fi.Mode().Perm())
	}
	return nil // devices, sockets: not part of a root filesystem seed
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrPermission) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
