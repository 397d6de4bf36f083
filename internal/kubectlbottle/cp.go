package kubectlbottle

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newCpCommand(o *options) *cobra.Command {
	var guestUser string
	cmd := &cobra.Command{
		Use:   "cp SRC DST [--user USER]",
		Short: "Copy a file into or out of a Bottle's machine (needs create on bottles/exec)",
		Long: `Copy one file between this machine and a Bottle's machine. Exactly one of
SRC and DST is NAME:/guest/path, as with kubectl cp. The copy streams through
the exec subresource (no size limit, nothing buffered whole), byte for byte,
and keeps the file's permission bits. It runs as the Bottle's execUser (or
--user), who must be able to read the source or write the target.

A directory as the target receives the file under its own name. An upload
lands atomically (written beside the target, then renamed).`,
		Example: `  kubectl bottle cp ./data.tar.gz my-bottle:/home/node/data.tar.gz
  kubectl bottle cp my-bottle:/home/node/report.md ./
  kubectl bottle cp --user root ./ca.crt my-bottle:/usr/local/share/ca-certificates/`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst, err := parseCpArgs(args[0], args[1])
			if err != nil {
				return err
			}
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			c := &Copy{Namespace: ns, User: guestUser, Stderr: o.streams.ErrOut}
			if src.bottle != "" {
				c.Name = src.bottle
				err = c.Download(cmd.Context(), cfg, src.path, dst.path)
			} else {
				c.Name = dst.bottle
				err = c.Upload(cmd.Context(), cfg, src.path, dst.path)
			}
			return o.explainUnreachable(cmd.Context(), ns, c.Name, err)
		},
	}
	cmd.Flags().StringVar(&guestUser, "user", "", "Guest user to copy as instead of the Bottle's execUser.")
	return cmd
}

type cpArg struct{ bottle, path string }

// parseCpArgs follows kubectl cp: NAME:PATH is in a Bottle when NAME is a
// valid object name; anything else (./a:b, /x:y) is local.
func parseCpArgs(a, b string) (src, dst cpArg, err error) {
	src, dst = splitCpArg(a), splitCpArg(b)
	switch {
	case src.bottle != "" && dst.bottle != "":
		return src, dst, errors.New("cp copies between this machine and one Bottle: one of SRC and DST must be local")
	case src.bottle == "" && dst.bottle == "":
		return src, dst, errors.New("one of SRC and DST must be NAME:/path in a Bottle")
	}
	remote := src
	if dst.bottle != "" {
		remote = dst
	}
	if !path.IsAbs(remote.path) {
		return src, dst, fmt.Errorf("the path in %s must be absolute, e.g. %s:/home/node/file", remote.bottle, remote.bottle)
	}
	if strings.IndexByte(remote.path, 0) >= 0 {
		return src, dst, errors.New("the guest path contains a NUL byte")
	}
	return src, dst, nil
}

func splitCpArg(s string) cpArg {
	name, p, ok := strings.Cut(s, ":")
	if !ok || len(validation.IsDNS1123Subdomain(name)) != 0 {
		return cpArg{path: s}
	}
	return cpArg{bottle: name, path: p}
}

// Copy moves one file through the exec subresource.
type Copy struct {
	Namespace, Name, User string
	// Stderr receives the guest's error messages.
	Stderr io.Writer
}

// downloadScript prints the file's permission bits on a line of their own,
// then the bytes.
const downloadScript = `f=$1
if [ -d "$f" ]; then echo "cp: $f is a directory: copy single files" >&2; exit 1; fi
m=$(stat -L -c %a -- "$f") || exit 1
exec 3<"$f" || exit 1
printf '%s\n' "$m" && exec cat <&3`

// uploadScript writes stdin beside the target, sets the mode and renames
// it into place, so the target is never seen half-written. The temporary
// file is made by mktemp in the target's directory (no name another user
// could plant a link at), and a link at the target's name is replaced, not
// written through. As root, no directory on the way may be a link another
// user made: root must not write where the exec user's link points.
const uploadScript = `t=$1 n=$2 m=$3
root=; [ "$(id -u)" = 0 ] && root=1
case "$t" in */) t="$t$n" ;; *) if [ -d "$t" ] && { [ -z "$root" ] || [ ! -L "$t" ]; }; then t="$t/$n"; fi ;; esac
d=${t%/*} f=${t##*/}
if [ -n "$root" ]; then
  cd -P / || exit 1
  set -f; IFS=/
  for c in ${d#/}; do
    [ -n "$c" ] || continue
    if [ -L "./$c" ] && [ "$(stat -c %u -- "./$c")" != 0 ]; then
      echo "cp: $c in $d is a link another user made: not writing through it as root" >&2; exit 1
    fi
    cd -P -- "./$c" || exit 1
  done
  unset IFS; set +f
else
  cd -P -- "${d:-/}" || exit 1
fi
tmp=$(mktemp "./.$f.kubectl-bottle-cp.XXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp" && chmod "$m" "$tmp" && mv -f -- "$tmp" "./$f" && trap - EXIT`

// Download copies guest file src to local dst (a file, or a directory to
// put it in), keeping its permission bits.
func (c *Copy) Download(ctx context.Context, cfg *rest.Config, src, dst string) error {
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		dst = filepath.Join(dst, path.Base(src))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".kubectl-bottle-cp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	defer func() { _ = tmp.Close() }()

	pr, pw := io.Pipe()
	modec := make(chan copyResult, 1)
	go func() {
		br := bufio.NewReaderSize(pr, 64<<10)
		line, err := br.ReadString('\n')
		if err != nil {
			_ = pr.CloseWithError(err)
			modec <- copyResult{err: errors.New("the guest sent no file")}
			return
		}
		mode, perr := strconv.ParseUint(strings.TrimSpace(line), 8, 32)
		if perr != nil {
			_ = pr.CloseWithError(perr)
			modec <- copyResult{err: fmt.Errorf("unexpected mode line %q", line)}
			return
		}
		_, err = io.Copy(tmp, br)
		if err != nil {
			_ = pr.CloseWithError(err)
		}
		modec <- copyResult{mode: fs.FileMode(mode) & fs.ModePerm, err: err}
	}()
	s := &Session{Namespace: c.Namespace, Name: c.Name, Subresource: v1.SubresourceExec, User: c.User,
		Command: []string{"sh", "-c", downloadScript, "sh", src}, Stdout: pw, Stderr: c.Stderr}
	err = s.Stream(ctx, cfg)
	_ = pw.Close()
	res := <-modec
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	if err := tmp.Chmod(res.mode); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

type copyResult struct {
	mode fs.FileMode
	err  error
}

// Upload copies local file src to guest path dst (a file, or a directory
// to put it in), keeping its permission bits.
func (c *Copy) Upload(ctx context.Context, cfg *rest.Config, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: copy single files", src)
	}
	mode := fmt.Sprintf("%04o", uint32(fi.Mode().Perm()))
	s := &Session{Namespace: c.Namespace, Name: c.Name, Subresource: v1.SubresourceExec, User: c.User,
		Command: []string{"sh", "-c", uploadScript, "sh", dst, filepath.Base(src), mode},
		Stdin:   f, Stdout: c.Stderr, Stderr: c.Stderr}
	return s.Stream(ctx, cfg)
}
