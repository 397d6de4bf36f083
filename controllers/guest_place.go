package controllers

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Files are never written through a path a guest user controls. smolvm's
// `machine cp` writes as root and, like any root write, would follow a
// symbolic link the exec user planted (~/.claude -> /etc puts
// ~/.claude/settings.json at /etc/settings.json, owned by the user). So:
//
//  1. the content is copied with `machine cp` into stagingDir, a directory
//     only root can write, with its final mode and owner;
//  2. a root script walks the target's directories from / without
//     following links a non-root user could have made, creates the missing
//     ones (given to the file's owner, as before), and renames the staged
//     file into the directory it ended in.
//
// The walk checks each component before entering it and the physical path
// after, so swapping a directory for a link mid-walk is caught; rename(2)
// replaces a link at the last component instead of following it.

// stagingDir holds copied files until they are renamed into place.
const stagingDir = "/var/lib/bottle-controller/incoming"

// prepareStaging makes stagingDir a root-only directory. /var/lib belongs
// to root, so nothing but root can have put anything at that path.
const prepareStaging = `set -eu
umask 077
mkdir -p -- "$1"
chown 0:0 -- "$1"
chmod 0700 -- "$1"`

// placeFile moves $1 (staged) to $2 (absolute target), creating missing
// directories given to $3 (empty: root). Exit 3 says a link or a race was
// refused; stderr names the path.
const placeFile = `set -eu
staged=$1 target=$2 owner=$3
trap 'rm -f -- "$staged"' EXIT
refuse() { echo "refusing to write $target: $*" >&2; exit 3; }
dir=${target%/*} name=${target##*/}
cd -P /
here=
set -f
IFS=/
for c in ${dir#/}; do
  [ -n "$c" ] || continue
  next=$here/$c
  if [ -L "$c" ]; then
    # Only root can make or change a link owned by root in a directory no
    # one else may write (e.g. Debian's /var/run -> /run).
    du=$(stat -c %u -- .) dm=$(stat -c %a -- .)
    [ "$(stat -c %u -- "$c")" = 0 ] && [ "$du" = 0 ] && [ $(( 0$dm & 022 )) = 0 ] ||
      refuse "$next is a symbolic link a non-root user could have made"
    cd -P -- "$c"
    here=$(pwd -P)
    continue
  fi
  if [ ! -e "$c" ]; then
    mkdir -- "$c"
    if [ -n "$owner" ]; then chown -h -- "$owner:" "$c"; fi
  fi
  [ -d "$c" ] || refuse "$next is not a directory"
  cd -P -- "$c"
  [ "$(pwd -P)" = "$next" ] || refuse "$next changed while it was checked"
  here=$next
done
if [ -d "$name" ] && [ ! -L "$name" ]; then refuse "it is a directory"; fi
mv -fT -- "$staged" "$name"`

// copyInSafely lands the host file at f.path in the guest with f's mode and
// owner (uid, gid), never through a link a guest user made.
func (r *BottleReconciler) copyInSafely(ctx context.Context, s *scope, host string, seq int, f desiredFile, uid, gid int) error {
	if err := r.guestScript(ctx, s, prepareStaging, stagingDir); err != nil {
		return fmt.Errorf("preparing %s: %w", stagingDir, err)
	}
	staged := path.Join(stagingDir, fmt.Sprintf("%s-%d", s.machineName, seq))
	if err := r.Machines.CopyIn(ctx, s.machineName, host, staged, os.FileMode(f.mode), uid, gid); err != nil {
		return err
	}
	return r.guestScript(ctx, s, placeFile, staged, f.path, f.owner)
}

// guestScript runs a fixed script as root with args as its positional
// parameters (never interpolated into the script).
func (r *BottleReconciler) guestScript(ctx context.Context, s *scope, script string, args ...string) error {
	res, err := r.Machines.Exec(ctx, smolvm.ExecRequest{
		Machine:     s.machineName,
		Argv:        append([]string{"sh", "-c", script, "sh"}, args...),
		Timeout:     r.CallTimeouts.Lookup,
		OutputLimit: OutputTail,
	})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(toValidUTF8(res.Stderr))
		if msg == "" {
			msg = fmt.Sprintf("exit code %d", res.ExitCode)
		}
		return &guestRefusal{msg: msg}
	}
	return nil
}

// guestRefusal is a guest-side check that failed; its message is the
// script's own (it names the path, never content).
type guestRefusal struct{ msg string }

func (e *guestRefusal) Error() string { return e.msg }

// unsafePath reports a refused file. Someone in the guest has to remove the
// link, so the agent looks again later rather than retrying at once.
func (r *BottleReconciler) unsafePath(s *scope, f desiredFile, refused *guestRefusal) (bool, ctrl.Result, error) {
	msg := fmt.Sprintf("file %s: %s", f.path, refused.msg)
	s.setCondition(v1.ConditionFilesReady, metav1.ConditionFalse, v1.ReasonUnsafePath, msg)
	s.wait(v1.ReasonUnsafePath, msg)
	r.event(s, corev1.EventTypeWarning, v1.ReasonUnsafePath, "Copy", "%s", msg)
	return false, ctrl.Result{RequeueAfter: r.SourceRetryPeriod}, nil
}
