package agent

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
//  1. each file is copied with `machine cp` into stagingDir, a directory
//     only root can write, as root's with mode 0600: no guest user can
//     plant, replace or read anything at a staged name;
//  2. one root script then, for every file: checks stagingDir and the
//     staged copy are still root's alone; resolves the owner's uid and gid
//     (a missing owner is reported, not guessed); gives the copy its owner
//     and mode; walks the target's directories from / without following
//     links a non-root user could have made, creating the missing ones
//     (given to the file's owner); and renames the copy into the directory
//     it ended in.
//
// The walk checks each component before entering it and the physical path
// after, so swapping a directory for a link mid-walk is caught; rename(2)
// replaces a link at the last component instead of following it. So a
// Bottle's files cost one `machine cp` each plus one guest call in all.

// stagingDir is where copies wait to be placed: the FHS's /var/lib, which
// Debian, Alpine and the like have and only root may write (placeFiles
// checks it and its parents). In an image without it smolvm's cp creates
// it, root's and 0755 (smolvm:crates/smolvm-agent/src/nsfile.rs:164-168),
// so the checks still hold.
const stagingDir = "/var/lib"

// stagedMode is a staged copy's mode: root's alone until placed.
const stagedMode = 0o600

// Exit codes of place() in placeFiles; any other is a refusal.
const (
	placeOK      = 0
	placeNoOwner = 4
)

// placeFiles places the staged files given as groups of four arguments
// (staged copy, absolute target, owner or empty for root, octal mode). For
// each it prints one line, "INDEX CODE MESSAGE": CODE 0 placed, 4 the owner
// does not exist (nothing written), anything else refused or failed,
// MESSAGE saying why. A staged copy never outlives its line.
const placeFiles = `set -u
set -f
nl='
'
# Directories made for an owner are 0755 whatever umask exec starts with.
umask 022
place() {
  staged=$1 target=$2 owner=$3 mode=$4
  trap 'rm -f -- "$staged"' EXIT
  refuse() { echo "refusing to write $target: $*"; exit 3; }
  set -f
  IFS=/
  sdir=${staged%/*} d=
  set --
  for c in "" ${sdir#/}; do
    d=${d%/}/$c
    [ ! -L "$d" ] || refuse "$d, where copies are staged, is a link or writable by a non-root user"
    set -- "$@" "$d"
  done
  [ -f "$staged" ] && [ ! -L "$staged" ] ||
    refuse "the staged copy $staged is not root's own file"
  # One stat for all of them and the staged copy: every process is a guest
  # exec's worth of work. Lines are "uid:mode:links:path" (the staging
  # path has no ":").
  IFS=$nl
  seen=
  for l in $(stat -c %u:%a:%h:%n -- "$@" "$staged"); do
    u=${l%%:*} l=${l#*:}
    m=${l%%:*} l=${l#*:}
    h=${l%%:*} p=${l#*:}
    if [ "$p" = "$staged" ]; then
      [ "$u:$h" = 0:1 ] || refuse "the staged copy $staged is not root's own file"
      seen=1
    else
      [ "$u" = 0 ] && [ $(( 0$m & 022 )) = 0 ] ||
        refuse "$p, where copies are staged, is a link or writable by a non-root user"
    fi
  done
  [ -n "$seen" ] || refuse "the staged copy $staged is not root's own file"
  IFS=/
  uid=0 gid=0
  if [ -n "$owner" ]; then
    # One id for both: "uid=U(user) gid=G(group) ...", POSIX's format in
    # the C locale (a name may be missing: "gid=G groups=...").
    ids=$(LC_ALL=C id -- "$owner" 2>/dev/null) || exit 4
    uid=${ids#uid=} uid=${uid%%[( ]*}
    gid=${ids#* gid=} gid=${gid%%[( ]*}
    case $uid:$gid in
    *[!0-9:]* | :* | *:) refuse "cannot read the uid and gid of $owner from: $ids" ;;
    esac
  fi
  chown -- "$uid:$gid" "$staged"
  chmod -- "$mode" "$staged"
  dir=${target%/*} name=${target##*/}
  cd -P /
  here=
  for c in ${dir#/}; do
    [ -n "$c" ] || continue
    next=$here/$c
    if [ -L "$c" ]; then
      # Only root can make or change a link owned by root in a directory no
      # one else may write (e.g. Debian's /var/run -> /run).
      du=$(stat -c %u -- .) dm=$(stat -c %a -- .)
      [ "$(stat -c %u -- "$c")" = 0 ] && [ "$du" = 0 ] && [ $(( 0$dm & 022 )) = 0 ] ||
        refuse "$next is a symbolic link a non-root user could have made"
      cd -P -- "./$c"
      here=$PWD
      continue
    fi
    if [ ! -e "$c" ]; then
      mkdir -- "$c"
      if [ -n "$owner" ]; then chown -h -- "$uid:$gid" "$c"; fi
    fi
    [ -d "$c" ] || refuse "$next is not a directory"
    # cd -P sets PWD to the physical path it reached (POSIX), as pwd -P
    # would print it, without a process for pwd. "./": a segment named "-"
    # is a directory, not cd's $OLDPWD.
    cd -P -- "./$c"
    [ "$PWD" = "$next" ] || refuse "$next changed while it was checked"
    here=$next
  done
  if [ -d "$name" ] && [ ! -L "$name" ]; then refuse "it is a directory"; fi
  mv -fT -- "$staged" "$name"
}
i=0
while [ $# -ge 4 ]; do
  out=$(set -e; place "$1" "$2" "$3" "$4" 2>&1)
  code=$?
  # One line per file: the message's lines joined with spaces.
  IFS=$nl msg=
  for l in $out; do msg=${msg:+$msg }$l; done
  printf '%s %s %s\n' "$i" "$code" "$msg"
  i=$((i + 1))
  shift 4
done`

// hostCopy is one file to land in the guest: its content on the host, and
// where, as whose and with which mode it goes.
type hostCopy struct {
	host string
	f    desiredFile
}

type placeOutcome int

const (
	placed placeOutcome = iota
	ownerMissing
	refused
)

// placeResult is one file's outcome; msg says why it was refused (it names
// paths, never content).
type placeResult struct {
	outcome placeOutcome
	msg     string
}

// tally records in copied the status of each file results says was
// placed (now), and returns the files whose owner the guest lacks and the
// first one refused, with why.
func tally(files []desiredFile, results []placeResult, copied map[string]v1.FileStatus) (ownerless []desiredFile, refusedFile *desiredFile, why string) {
	for i, res := range results {
		f := files[i]
		switch res.outcome {
		case placed:
			now := metav1.Now()
			copied[f.path] = v1.FileStatus{Path: f.path, SHA256: f.sha256, Bytes: int64(len(f.content.data)), Mode: f.mode, Owner: f.owner, CopiedAt: &now}
		case ownerMissing:
			ownerless = append(ownerless, f)
		case refused:
			if refusedFile == nil {
				refusedFile, why = &files[i], res.msg
			}
		}
	}
	return ownerless, refusedFile, why
}

// guestCallError is a smolvm failure while landing files, with the action
// that failed ("copy /path", "place files").
type guestCallError struct {
	action string
	err    error
}

func (e *guestCallError) Error() string { return e.action + ": " + e.err.Error() }
func (e *guestCallError) Unwrap() error { return e.err }

// copyInSafely lands every file at its path with its mode and owner, never
// through a link a guest user made: one `machine cp` each into stagingDir,
// then one guest call places them all. It returns the outcome of each file
// copied, in order; on a smolvm failure (a *guestCallError) the files
// before the failed copy are still placed and returned.
func (r *BottleReconciler) copyInSafely(ctx context.Context, s *scope, files []hostCopy) ([]placeResult, error) {
	return r.guest().copyIn(ctx, s.machineName, files)
}

func (r *BottleReconciler) placeStaged(ctx context.Context, s *scope, args []string) ([]placeResult, error) {
	return r.guest().place(ctx, s.machineName, args)
}

func (r *BottleReconciler) guest() guestFiles {
	return guestFiles{machines: r.Machines, tempDir: r.TempDir}
}

// placeTimeout bounds the exec of placeFiles in the guest (a few file
// moves, ownership and mode changes). Every smolvm verb's deadline is in
// smolvm.Timeouts, applied by the driver; an exec is bounded by its request.
const placeTimeout = 30 * time.Second

// guestFiles lands files in a machine, a Bottle's or a template's golden.
type guestFiles struct {
	machines Machines
	// tempDir is where contents are materialised before `machine cp`.
	tempDir string
}

// land materialises files in a private host directory, removed before it
// returns, and lands them in machine (copyIn).
func (g guestFiles) land(ctx context.Context, machine string, files []desiredFile) ([]placeResult, error) {
	dir, err := os.MkdirTemp(g.tempDir, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("creating private temp dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	copies := make([]hostCopy, len(files))
	for i, f := range files {
		host := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(host, f.content.data, 0o600); err != nil {
			return nil, fmt.Errorf("materialising %s: %w", f.path, err)
		}
		copies[i] = hostCopy{host: host, f: f}
	}
	return g.copyIn(ctx, machine, copies)
}

func (g guestFiles) copyIn(ctx context.Context, machine string, files []hostCopy) ([]placeResult, error) {
	args := make([]string, 0, 4*len(files))
	var failed error
	for i, c := range files {
		staged := path.Join(stagingDir, fmt.Sprintf(".bottle-staged-%d", i))
		err := g.machines.CopyIn(ctx, machine, c.host, staged, stagedMode, 0, 0)
		if err != nil {
			failed = &guestCallError{action: "copy " + c.f.path, err: err}
			break
		}
		args = append(args, staged, c.f.path, c.f.owner, strconv.FormatInt(int64(c.f.mode), 8))
	}
	if len(args) == 0 {
		return nil, failed
	}
	results, err := g.place(ctx, machine, args)
	if err != nil {
		return nil, &guestCallError{action: "place files", err: err}
	}
	return results, failed
}

// placeStaged runs placeFiles and reads one result per file.
func (g guestFiles) place(ctx context.Context, machine string, args []string) ([]placeResult, error) {
	n := len(args) / 4
	res, err := g.machines.Exec(ctx, smolvm.ExecRequest{
		Machine: machine,
		Argv:    append([]string{"sh", "-c", placeFiles, "sh"}, args...),
		Timeout: placeTimeout,
		// Room for every line: messages name paths, which the API bounds
		// to 8 KiB in all.
		OutputLimit: 64 << 10,
	})
	if err != nil {
		return nil, err
	}
	results := make([]placeResult, n)
	seen := make([]bool, n)
	for line := range strings.Lines(res.Stdout) {
		fields := strings.SplitN(strings.TrimRight(line, "\n"), " ", 3)
		if len(fields) < 2 {
			continue
		}
		i, err1 := strconv.Atoi(fields[0])
		code, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil || i < 0 || i >= n {
			continue
		}
		msg := ""
		if len(fields) == 3 {
			msg = strings.TrimSpace(toValidUTF8(fields[2]))
		}
		seen[i] = true
		switch code {
		case placeOK:
			results[i] = placeResult{outcome: placed}
		case placeNoOwner:
			results[i] = placeResult{outcome: ownerMissing}
		default:
			if msg == "" {
				msg = fmt.Sprintf("placing the file failed with exit code %d", code)
			}
			results[i] = placeResult{outcome: refused, msg: msg}
		}
	}
	// A file the script did not report on (it died): refused, with what
	// the guest said.
	for i := range results {
		if !seen[i] {
			msg := strings.TrimSpace(toValidUTF8(res.Stderr))
			if msg == "" {
				msg = fmt.Sprintf("placing the file failed (exit code %d)", res.ExitCode)
			}
			results[i] = placeResult{outcome: refused, msg: msg}
		}
	}
	return results, nil
}

// unsafePath reports a refused file. Someone in the guest has to remove the
// link, so the agent looks again later rather than retrying at once.
func (r *BottleReconciler) unsafePath(s *scope, f desiredFile, why string) (bool, ctrl.Result, error) {
	msg := fmt.Sprintf("file %s: %s", f.path, why)
	s.setCondition(v1.ConditionFilesReady, metav1.ConditionFalse, v1.ReasonUnsafePath, msg)
	s.wait(v1.ReasonUnsafePath, msg)
	r.event(s, corev1.EventTypeWarning, v1.ReasonUnsafePath, "Copy", "%s", msg)
	return false, ctrl.Result{RequeueAfter: r.SourceRetryPeriod}, nil
}
