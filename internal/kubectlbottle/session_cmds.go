package kubectlbottle

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"

	agentsv1alpha1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newExecCommand(o *options) *cobra.Command {
	var stdin, tty bool
	var guestUser string
	cmd := &cobra.Command{
		Use:   "exec NAME [-i] [-t] [--user USER] -- COMMAND [ARG...]",
		Short: "Run a command in a Bottle's machine (needs create on bottles/exec)",
		Long: `Run a command in a Bottle's machine as its execUser (or --user), through the
Kubernetes API: the API server checks that you may create bottles/exec.

The command's exit code becomes kubectl bottle's exit code. Without -t its
stdout and stderr stay apart.`,
		Example: `  kubectl bottle exec my-bottle -- ls -la /workspace
  echo hello | kubectl bottle exec my-bottle -i -- sh -c 'read x; echo "$x"'
  kubectl bottle exec my-bottle -it --user root -- bash`,
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
			return o.runSession(cmd, &Session{Name: args[0], Subresource: agentsv1alpha1.SubresourceExec, Command: command, User: guestUser}, stdin, tty)
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "Pass stdin to the command.")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "Allocate a TTY (needs -i and a terminal).")
	// Shadows the kubeconfig --user flag for this command: pick kubeconfig
	// users with --context instead.
	cmd.Flags().StringVar(&guestUser, "user", "", "Guest user to run as instead of the Bottle's execUser.")
	return cmd
}

func newAttachCommand(o *options) *cobra.Command {
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "attach NAME [-- CLAUDE_ARG...]",
		Short: "Start an interactive claude session in a Bottle (needs create on bottles/attach)",
		Long: `Start claude in the Bottle's machine as its execUser, with
--append-system-prompt-file set to the Bottle's promptPath, on a TTY that
follows your terminal's size. Arguments after -- are passed to claude.`,
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
			return o.runSession(cmd, &Session{Name: args[0], Subresource: agentsv1alpha1.SubresourceAttach, Command: extra}, stdin, tty)
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", true, "Pass stdin to claude.")
	cmd.Flags().BoolVarP(&tty, "tty", "t", true, "Use a TTY when stdin is a terminal.")
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

// runSession streams with kubectl's own terminal handling: raw mode while
// the session runs (restored on exit and on signals) and SIGWINCH resizes.
func (o *options) runSession(cmd *cobra.Command, s *Session, stdin, tty bool) error {
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	if s.Namespace, err = o.namespace(); err != nil {
		return err
	}
	t := term.TTY{In: o.streams.In, Out: o.streams.Out}
	if tty && (!stdin || !t.IsTerminalIn()) {
		_, _ = fmt.Fprintln(o.streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		tty = false
	}
	t.Raw = tty
	if stdin {
		s.Stdin = o.streams.In
		if s.Stdin == nil {
			s.Stdin = eofReader{}
		}
	}
	s.Stdout, s.Stderr, s.TTY = o.streams.Out, o.streams.ErrOut, tty
	if tty {
		s.SizeQueue = sizeQueue{t.MonitorSize(t.GetSize())}
	}
	return t.Safe(func() error { return s.Stream(cmd.Context(), cfg) })
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
