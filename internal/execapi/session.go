package execapi

import (
	"context"
	"net/http"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"

	agentsv1alpha1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// guestCommand is what a session runs in the Bottle's machine. attach is the
// seed's exec_claude: `claude [--append-system-prompt-file P] ARGS...` as
// the exec user; argv is quoted by the smolvm driver, never by us.
func guestCommand(b *agentsv1alpha1.Bottle, sr *sessionRequest, mode smolvm.ExecMode) smolvm.ExecRequest {
	user := b.ExecUser()
	var argv []string
	switch sr.subresource {
	case agentsv1alpha1.SubresourceAttach:
		argv = []string{"claude"}
		if b.Spec.PromptPath != "" {
			argv = append(argv, "--append-system-prompt-file", b.Spec.PromptPath)
		}
		argv = append(argv, sr.command...)
	default:
		if sr.user != "" {
			user = sr.user
		}
		argv = sr.command
	}
	return smolvm.ExecRequest{
		Machine: b.MachineName(),
		User:    user,
		Argv:    argv,
		Mode:    mode,
	}
}

// serveSession upgrades the request and runs the command on this node until
// it exits or the client goes away.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, b *agentsv1alpha1.Bottle, sr *sessionRequest, requester string) {
	if err := checkUpgrade(r); err != nil {
		writeStatus(w, err)
		return
	}
	// Not b.MachineName(): that derives a name for a Bottle with none yet.
	if b.Status.MachineName == "" && b.Spec.MachineName == "" {
		writeStatus(w, notReady(b, "it has no machine yet"))
		return
	}
	req := guestCommand(b, sr, s.opts.ExecMode)
	// Sessions end with the server, not with the HTTP request: a hijacked
	// request's context is never cancelled by the peer going away.
	ctx, cancel := context.WithCancel(s.baseContext())
	defer cancel()
	sess, err := acceptV5(w, r, sr, s.opts.KeepAlive)
	if err != nil {
		s.log.V(1).Info("WebSocket upgrade failed", "bottle", b.Namespace+"/"+b.Name, "reason", err.Error())
		return
	}
	sess.pongs = s.onPong
	sess.run(ctx, cancel)

	streams := smolvm.Streams{
		Stdout: sess.writer(chanStdout, sr.stdout),
		Stderr: sess.writer(chanStderr, sr.stderr),
		TTY:    sr.tty,
	}
	if sess.stdin != nil {
		// The driver hands smolvm a pipe and stops feeding it when the
		// command ends, so an open client stdin never holds the session.
		streams.Stdin = sess.stdin
	}
	if sr.tty {
		streams.Resize = sess.resize
		streams.InitialSize = sess.firstSize(ctx)
	}
	// Never log argv or the environment: commands carry secrets.
	logger := s.log.WithValues("bottle", b.Namespace+"/"+b.Name, "subresource", sr.subresource,
		"requester", requester, "guestUser", req.User, "tty", sr.tty, "args", len(req.Argv))
	logger.Info("session started")
	start := time.Now()
	code, err := s.opts.Machines.ExecInteractive(ctx, req, streams)
	if ctx.Err() != nil && sessionGone(sess) {
		logger.Info("session ended: client disconnected", "duration", time.Since(start).Round(time.Millisecond))
		sess.abort()
		return
	}
	if err != nil {
		logger.Info("session failed", "reason", err.Error(), "duration", time.Since(start).Round(time.Millisecond))
	} else {
		logger.Info("session ended", "exitCode", code, "duration", time.Since(start).Round(time.Millisecond))
	}
	sess.finish(exitStatus(code, err))
}

func sessionGone(s *v5Session) bool {
	select {
	case <-s.readDone:
		return true
	default:
		return false
	}
}
