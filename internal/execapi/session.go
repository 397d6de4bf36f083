package execapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// sessionExecRequest is what a session runs in the Bottle's machine. attach is the
// seed's exec_claude: `claude [--append-system-prompt-file P] ARGS...` as
// the exec user; argv is quoted by the smolvm driver, never by us.
func sessionExecRequest(b *v1.Bottle, sr *sessionRequest, mode smolvm.ExecMode, env []smolvm.EnvVar) smolvm.ExecRequest {
	user := b.ExecUser()
	var argv []string
	switch sr.subresource {
	case v1.SubresourceAttach:
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
		Env:     env,
		Mode:    mode,
	}
}

// serveSession upgrades the request and runs the command on this node until
// it exits or the client goes away.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, b *v1.Bottle, sr *sessionRequest, requester string) {
	if err := checkUpgrade(r); err != nil {
		writeAPIStatus(w, err)
		return
	}
	if idleStopped(b) {
		woken, err := s.wakeIdle(r.Context(), b)
		if err != nil {
			writeAPIStatus(w, err)
			return
		}
		b = woken
	}
	if s.opts.Activity != nil {
		// A session is use: the Bottle is not idle while it lasts.
		defer s.opts.Activity.Begin(b.UID)()
	}
	// Sessions end with the server, not with the HTTP request: a hijacked
	// request's context is never cancelled by the peer going away.
	ctx, cancel := context.WithCancel(s.baseContext())
	defer cancel()
	env := s.resolveSessionEnv(ctx, b, sr.env)
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
	vars, err := env.wait(ctx)
	if err != nil {
		s.log.Info("session refused", "bottle", b.Namespace+"/"+b.Name, "reason", err.Error())
		sess.finish(exitStatus(-1, err))
		return
	}
	req := sessionExecRequest(b, sr, s.opts.ExecMode, vars)
	// Never log argv or the environment: commands carry secrets.
	logger := s.log.WithValues("bottle", b.Namespace+"/"+b.Name, "subresource", sr.subresource,
		"requester", requester, "guestUser", req.User, "tty", sr.tty, "args", len(req.Argv), "envVars", len(req.Env))
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
	sess.finish(exitStatus(code, explainNoMachine(b, err)))
}

// explainNoMachine turns smolvm's "not running" and "not found" into what
// the user can do about it.
func explainNoMachine(b *v1.Bottle, err error) error {
	switch {
	case smolvm.IsNotRunning(err):
		return fmt.Errorf("bottle %q has no running machine (phase %s%s): %w", b.Name, phaseName(b.Status.Phase), conditionMessage(b), err)
	case smolvm.IsNotFound(err):
		return fmt.Errorf("bottle %q has no machine yet (phase %s%s): %w", b.Name, phaseName(b.Status.Phase), conditionMessage(b), err)
	}
	return err
}

func sessionGone(s *v5Session) bool {
	select {
	case <-s.readDone:
		return true
	default:
		return false
	}
}
