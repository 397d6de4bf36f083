package kubectlbottle

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/pipesize"
)

func newExecCommand(o *options) *cobra.Command {
	var stdin, tty bool
	var guestUser string
	var env []string
	cmd := &cobra.Command{
		Use:   "exec NAME [-i] [-t] [--user USER] [--env K=V]... -- COMMAND [ARG...]",
		Short: "Run a command in a Bottle's machine (needs create on bottles/exec)",
		Long: `Run a command in a Bottle's machine as its execUser (or --user), through the
Kubernetes API: the API server checks that you may create bottles/exec.

The command's exit code becomes kubectl bottle's exit code. Without -t its
stdout and stderr stay apart. The command's environment is the Bottle's
spec.env (Secret values resolved when the session starts), then --env.
--env values travel in the request URL like the command itself (the API
server's audit log may record them): put secrets in spec.env instead.`,
		Example: `  kubectl bottle exec my-bottle -- ls -la /workspace
  echo hello | kubectl bottle exec my-bottle -i -- sh -c 'read x; echo "$x"'
  kubectl bottle exec my-bottle -it --user root -- bash
  kubectl bottle exec my-bottle --env DEBUG=1 -- npm test`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			command, err := commandAfterName(cmd, args)
			if err != nil {
				return err
			}
			if len(command) == 0 {
				return errors.New("exec needs a command after --, e.g. kubectl bottle exec NAME -- sh")
			}
			for _, kv := range env {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return fmt.Errorf("--env must be NAME=VALUE, not %q", kv)
				}
			}
			return o.runSession(cmd, &Session{Name: args[0], Subresource: v1.SubresourceExec, Command: command, User: guestUser, Env: env}, stdin, ttyOn(tty))
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "Pass stdin to the command.")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "Allocate a TTY (needs -i and a terminal).")
	// Shadows the kubeconfig --user flag for this command: pick kubeconfig
	// users with --context instead.
	cmd.Flags().StringVar(&guestUser, "user", "", "Guest user to run as instead of the Bottle's execUser.")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE to add to (or override in) the session's environment (repeatable).")
	return cmd
}

func newAttachCommand(o *options) *cobra.Command {
	var stdin, tty, noTTY bool
	cmd := &cobra.Command{
		Use:   "attach NAME [-- CLAUDE_ARG...]",
		Short: "Start an interactive claude session in a Bottle (needs create on bottles/attach)",
		Long: `Start claude in the Bottle's machine as its execUser, with
--append-system-prompt-file set to the Bottle's promptPath and the Bottle's
spec.env in its environment. Arguments after -- are passed to claude.

Like kubectl, it uses a TTY (following your terminal's size) when stdin is a
terminal and none otherwise, so 'echo task | kubectl bottle attach B -- -p'
works as a pipe. -t asks for a TTY even when stdin is not a terminal; -T
never uses one.`,
		Example: `  kubectl bottle attach my-bottle
  kubectl bottle attach my-bottle -- --dangerously-skip-permissions
  echo 'summarise README.md' | kubectl bottle attach my-bottle -- -p`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, err := commandAfterName(cmd, args)
			if err != nil {
				return err
			}
			if tty && noTTY {
				return errors.New("-t and -T contradict each other: pick one")
			}
			mode := ttyAuto
			switch {
			case tty:
				mode = ttyForce
			case noTTY:
				mode = ttyOff
			}
			return o.runSession(cmd, &Session{Name: args[0], Subresource: v1.SubresourceAttach, Command: extra}, stdin, mode)
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", true, "Pass stdin to claude.")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "Use a TTY even when stdin is not a terminal (default: only when it is).")
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "Never use a TTY.")
	return cmd
}

// commandAfterName returns the arguments after NAME, which must be
// separated from it by -- (as kubectl exec requires).
func commandAfterName(cmd *cobra.Command, args []string) ([]string, error) {
	dash := cmd.ArgsLenAtDash()
	switch {
	case dash == -1 && len(args) > 1:
		return nil, fmt.Errorf("separate the command from the Bottle name with --: kubectl bottle %s %s -- %s",
			cmd.Name(), args[0], args[1])
	case dash > 1:
		return nil, fmt.Errorf("expected one Bottle name before --, got %d", dash)
	case dash == -1:
		return nil, nil
	}
	return args[dash:], nil
}

// ttyMode is how a session decides on a TTY.
type ttyMode int

const (
	ttyOff   ttyMode = iota
	ttyAuto          // when stdin is a terminal (attach's default)
	ttyAsk           // -t of exec: wanted, with a warning when impossible (kubectl exec)
	ttyForce         // -t of attach: even without a local terminal
)

func ttyOn(t bool) ttyMode {
	if t {
		return ttyAsk
	}
	return ttyOff
}

// runSession streams with kubectl's own terminal handling: raw mode while
// the session runs (restored on exit and on signals) and SIGWINCH resizes.
func (o *options) runSession(cmd *cobra.Command, s *Session, stdin bool, mode ttyMode) error {
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	if s.Namespace, err = o.namespace(); err != nil {
		return err
	}
	t := term.TTY{In: o.streams.In, Out: o.streams.Out}
	terminal := stdin && t.IsTerminalIn()
	tty := false
	switch mode {
	case ttyAuto:
		tty = terminal
	case ttyAsk:
		tty = terminal
		if !terminal {
			_, _ = fmt.Fprintln(o.streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
	case ttyForce:
		tty = true
	}
	// Raw mode and resizes need a local terminal; a forced TTY without one
	// runs at the server's default size.
	t.Raw = tty && terminal
	if stdin {
		s.Stdin = o.streams.In
		if s.Stdin == nil {
			s.Stdin = eofReader{}
		}
	}
	s.Stdout, s.Stderr, s.TTY = o.streams.Out, o.streams.ErrOut, tty
	// Piped output (or input) crosses the pipe in pieces of its size:
	// larger pieces, fewer context switches for us and the other end.
	pipesize.Grow(o.streams.Out, outputBuffer)
	if stdin {
		pipesize.Grow(o.streams.In, stdinChunk)
	}
	if tty && terminal {
		s.SizeQueue = sizeQueue{t.MonitorSize(t.GetSize())}
	}
	err = t.Safe(func() error { return s.Stream(cmd.Context(), cfg) })
	return o.explainUnreachable(cmd.Context(), s.Namespace, s.Name, err)
}

// sizeQueue adapts kubectl's terminal size queue to client-go's.
type sizeQueue struct{ q term.TerminalSizeQueue }

func (a sizeQueue) Next() *remotecommand.TerminalSize {
	n := a.q.Next()
	if n == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: n.Width, Height: n.Height}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
