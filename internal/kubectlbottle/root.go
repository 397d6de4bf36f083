// Package kubectlbottle is `kubectl bottle`: sessions in a Bottle's machine
// through the exec API, one-shot runs, copies, step logs, status, retries,
// templates and refused egress. NewCommand's subcommands are the one list
// of verbs: the README's verb block, docs/exec.md's sections and the krew
// manifest's description are checked against it or rendered from it.
package kubectlbottle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec, OIDC... credential plugins
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/exec"
)

// ExitError ends the plugin with Code after printing Err (when set).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the plugin and returns its exit code: the remote command's for
// exec and attach, 1 for errors, and those documented by wait.
func Main(args []string, streams genericiooptions.IOStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return exitCode(err, streams)
}

func exitCode(err error, streams genericiooptions.IOStreams) int {
	if err == nil {
		return 0
	}
	var code exec.CodeExitError
	if errors.As(err, &code) {
		// The remote command's own code, printed by nobody (as kubectl exec).
		return code.Code
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			_, _ = fmt.Fprintln(streams.ErrOut, formatError(ee.Err))
		}
		return ee.Code
	}
	_, _ = fmt.Fprintln(streams.ErrOut, formatError(err))
	return 1
}

// formatError prints server refusals the way kubectl does.
func formatError(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		st := se.Status()
		if st.Reason != "" {
			return fmt.Sprintf("Error from server (%s): %s", st.Reason, st.Message)
		}
		return "Error from server: " + st.Message
	}
	return "error: " + err.Error()
}

// options are shared by every subcommand.
type options struct {
	flags   kubeconfigFlags
	streams genericiooptions.IOStreams
}

// NewCommand is `kubectl bottle` with its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{streams: streams}
	cmd := &cobra.Command{
		Use:   "kubectl-bottle",
		Short: "Work with Bottles, the smolvm microVMs that sandbox coding agents: sessions, one-shot runs, files, step logs and status",
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl bottle",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.flags.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newAttachCommand(o), newExecCommand(o), newLogsCommand(o), newCpCommand(o), newResultsCommand(o), newWaitCommand(o), newRetryCommand(o), newTemplatesCommand(o), newEgressCommand(o), newRunCommand(o))
	return cmd
}

func (o *options) restConfig() (*rest.Config, error) { return o.flags.restConfig() }

func (o *options) namespace() (string, error) { return o.flags.namespace() }

func (o *options) bottleClient() (*bottleClient, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	return newBottleClient(cfg)
}

// clientInNamespace is a Bottle client and the namespace the kubeconfig
// flags select.
func (o *options) clientInNamespace() (*bottleClient, string, error) {
	c, err := o.bottleClient()
	if err != nil {
		return nil, "", err
	}
	ns, err := o.namespace()
	return c, ns, err
}

// completeBottleNames lists the Bottles of the namespace for shell
// completion of the first argument.
func (o *options) completeBottleNames(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, ns, err := o.clientInNamespace()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := c.List(cmd.Context(), ns, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, b := range list.Items {
		if strings.HasPrefix(b.Name, toComplete) {
			names = append(names, b.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
