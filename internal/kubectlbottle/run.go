package kubectlbottle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/exec"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// runExitNoCode is the plugin's exit code when the run ended without one
// (lost, cancelled, refused, forbidden by concurrency): the reason is
// printed.
const runExitNoCode = 1

// claudeScript runs claude headless as the run's user, with the Bottle's
// prompt file when it has one. The prompt reaches the guest in the
// environment (stdin), never on a command line.
const claudeScript = `if [ -n "$BOTTLE_PROMPT_FILE" ]; then
  exec claude -p "$BOTTLE_RUN_PROMPT" --append-system-prompt-file "$BOTTLE_PROMPT_FILE"
fi
exec claude -p "$BOTTLE_RUN_PROMPT"
`

// runFlags are `kubectl bottle run`'s flags.
type runFlags struct {
	name, template, user, script, claude, concurrency string
	timeout, ttl                                      time.Duration
	env, outputs                                      []string
	rm                                                bool
	poll                                              time.Duration
}

func newRunCommand(o *options) *cobra.Command {
	f := &runFlags{poll: 250 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "run BOTTLE [flags] -- COMMAND [ARGS...]",
		Short: "Run a command once in a Bottle as a BottleRun, stream its output, exit with its code",
		Long: `Create a BottleRun: the command runs once in the Bottle through its agent (not
through this client), and its result stays in the BottleRun's status. This
command waits for it to start, streams its output (stdout and stderr
interleaved, from bottleruns/log), and exits with the command's exit code
(1 with the reason when it ended without one: Lost, Cancelled, Refused,
ConcurrencyForbidden). The BottleRun is left behind unless --rm is given.

Interrupting this command leaves the run running (without --rm) or deletes,
and so cancels, it (with --rm).

--claude PROMPT runs ` + "`claude -p PROMPT`" + ` as the Bottle's execUser with its
promptPath as --append-system-prompt-file and its spec.env, as attach does.
--template T runs in a fresh Bottle forked from BottleTemplate T, deleted
when the run ends.`,
		Example: `  kubectl bottle run my-bottle -- npm test
  kubectl bottle run my-bottle --rm --timeout 10m -- sh -c 'make lint'
  kubectl bottle run my-bottle --claude "Review the last commit" --output review=/tmp/review.md
  kubectl bottle run my-bottle --script ./check.sh --env CI=true`,
		ValidArgsFunction: o.completeBottleNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			var bottle string
			var argv []string
			dash := cmd.ArgsLenAtDash()
			if dash < 0 {
				dash = len(args)
			}
			if dash > 1 {
				return fmt.Errorf("expected one Bottle name before --, got %d: %s", dash, strings.Join(args[:dash], " "))
			}
			if dash == 1 {
				bottle = args[0]
			}
			argv = args[dash:]
			run, err := f.build(cmd.InOrStdin(), bottle, argv)
			if err != nil {
				return err
			}
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			if run.Namespace, err = o.namespace(); err != nil {
				return err
			}
			return runAndStream(cmd.Context(), cfg, run, f, o.streams.Out, o.streams.ErrOut)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "The BottleRun's name (default: generated from the Bottle's).")
	fl.StringVar(&f.template, "template", "", "Run in a fresh Bottle forked from this BottleTemplate (instead of BOTTLE).")
	fl.StringVar(&f.user, "user", "", "The guest user to run as (default: the Bottle's execUser).")
	fl.StringVar(&f.script, "script", "", "Run this POSIX shell script file ('-' reads stdin) instead of a command.")
	fl.StringVar(&f.claude, "claude", "", "Run `claude -p PROMPT` as the Bottle's execUser, with its prompt file and env.")
	fl.StringVar(&f.concurrency, "concurrency", "", "Queue (default) waits for the Bottle's active run; Forbid fails instead.")
	fl.DurationVar(&f.timeout, "timeout", 0, "Kill the command after this long (default: the API's, 1h).")
	fl.DurationVar(&f.ttl, "ttl", 0, "Delete the BottleRun this long after it finished (default: keep it).")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE added to the run's environment (repeatable).")
	fl.StringArrayVar(&f.outputs, "output", nil, "NAME=PATH: keep the guest file's content in status.outputs (repeatable).")
	fl.BoolVar(&f.rm, "rm", false, "Delete the BottleRun once it ended (or when interrupted).")
	return cmd
}

// build turns the flags into a BottleRun; the API server checks the rest.
func (f *runFlags) build(stdin io.Reader, bottle string, argv []string) (*v1.BottleRun, error) {
	run := &v1.BottleRun{}
	switch {
	case bottle != "" && f.template != "":
		return nil, errors.New("give a Bottle or --template, not both")
	case bottle != "":
		run.Spec.BottleRef = &v1.BottleReference{Name: bottle}
		run.GenerateName = bottle + "-run-"
	case f.template != "":
		run.Spec.TemplateRef = &v1.TemplateReference{Name: f.template}
		run.GenerateName = f.template + "-run-"
	default:
		return nil, errors.New("give the Bottle to run in (or --template)")
	}
	if f.name != "" {
		run.Name, run.GenerateName = f.name, ""
	}
	given := 0
	for _, set := range []bool{len(argv) > 0, f.script != "", f.claude != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, errors.New("give exactly one of: a command after --, --script FILE, or --claude PROMPT")
	}
	switch {
	case len(argv) > 0:
		run.Spec.Command = argv
	case f.script != "":
		var raw []byte
		var err error
		if f.script == "-" {
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(f.script)
		}
		if err != nil {
			return nil, fmt.Errorf("--script: %w", err)
		}
		s := string(raw)
		run.Spec.Script = &s
	default:
		s := claudeScript
		run.Spec.Script = &s
		run.Spec.Env = append(run.Spec.Env, v1.EnvVar{Name: "BOTTLE_RUN_PROMPT", Value: &f.claude})
	}
	run.Spec.User = f.user
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		run.Spec.Env = append(run.Spec.Env, v1.EnvVar{Name: k, Value: &v})
	}
	for _, kv := range f.outputs {
		n, p, ok := strings.Cut(kv, "=")
		if !ok || n == "" || p == "" {
			return nil, fmt.Errorf("--output %q: want NAME=PATH", kv)
		}
		run.Spec.Outputs = append(run.Spec.Outputs, v1.RunOutput{Name: n, Path: p})
	}
	if f.timeout > 0 {
		run.Spec.TimeoutSeconds = int32(max(1, min(f.timeout/time.Second, 86400)))
	}
	if f.ttl > 0 {
		ttl := int32(min(f.ttl/time.Second, 31536000))
		run.Spec.TTLSecondsAfterFinished = &ttl
	}
	run.Spec.ConcurrencyPolicy = v1.ConcurrencyPolicy(f.concurrency)
	return run, nil
}

// runClient creates, reads and deletes BottleRuns.
type runClient struct{ rc *rest.RESTClient }

func (c *runClient) get(ctx context.Context, key types.NamespacedName) (*v1.BottleRun, error) {
	r := &v1.BottleRun{}
	err := c.rc.Get().Namespace(key.Namespace).Resource(v1.BottleRunResource).Name(key.Name).Do(ctx).Into(r)
	return r, err
}

// runAndStream creates the run, streams its log, waits for its end and
// returns the command's exit code as an error (exec.CodeExitError), as
// `kubectl exec` does.
func runAndStream(ctx context.Context, cfg *rest.Config, run *v1.BottleRun, f *runFlags, out, errOut io.Writer) (retErr error) {
	gv := v1.GroupVersion
	rc, err := restClientFor(cfg, &gv)
	if err != nil {
		return err
	}
	c := &runClient{rc: rc}
	// A missing Bottle is said now: no agent would ever pick the run up.
	if err := c.checkBottle(ctx, run); err != nil {
		return err
	}
	created := &v1.BottleRun{}
	if err := rc.Post().Namespace(run.Namespace).Resource(v1.BottleRunResource).Body(run).Do(ctx).Into(created); err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: created.Namespace, Name: created.Name}
	_, _ = fmt.Fprintf(errOut, "bottlerun/%s created\n", created.Name)
	if f.rm {
		defer func() {
			// Interrupted or done: delete it (a running run is cancelled).
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			err := rc.Delete().Namespace(key.Namespace).Resource(v1.BottleRunResource).Name(key.Name).Do(dctx).Error()
			if err != nil && !apierrors.IsNotFound(err) && retErr == nil {
				retErr = err
			}
		}()
	}

	// Wait for the start (or an end without one: Forbid, Lost...).
	cur, err := c.waitFor(ctx, key, f.poll, func(r *v1.BottleRun) bool {
		return r.Status.StartedAt != nil || r.Finished()
	})
	if err != nil {
		return interrupted(ctx, err, key.Name, f.rm, errOut)
	}
	streamed := false
	if cur.Status.StartedAt != nil {
		lr := &runLog{namespace: key.Namespace, name: key.Name, follow: true}
		err := lr.stream(ctx, cfg, out)
		switch {
		case err == nil:
			streamed = true
		case ctx.Err() != nil:
			return interrupted(ctx, ctx.Err(), key.Name, f.rm, errOut)
		default:
			// No log kept (--step-log-dir off) or the agent is out of
			// reach: the status tails are printed at the end instead.
			_, _ = fmt.Fprintf(errOut, "cannot stream the run's output (%s); printing its tails when it ends\n", formatError(err))
		}
	}
	cur, err = c.waitFor(ctx, key, f.poll, (*v1.BottleRun).Finished)
	if err != nil {
		return interrupted(ctx, err, key.Name, f.rm, errOut)
	}
	if !streamed {
		_, _ = io.WriteString(out, cur.Status.Stdout)
		_, _ = io.WriteString(errOut, cur.Status.Stderr)
	}
	return runExit(cur)
}

// checkBottle reads the run's Bottle (it must exist) and points a --claude
// run at its prompt file.
func (c *runClient) checkBottle(ctx context.Context, run *v1.BottleRun) error {
	if run.Spec.BottleRef == nil {
		return nil
	}
	b := &v1.Bottle{}
	err := c.rc.Get().Namespace(run.Namespace).Resource(v1.BottleResource).Name(run.Spec.BottleRef.Name).Do(ctx).Into(b)
	if err != nil {
		return err
	}
	if run.Spec.Script != nil && *run.Spec.Script == claudeScript && b.Spec.PromptPath != "" {
		p := b.Spec.PromptPath
		run.Spec.Env = append(run.Spec.Env, v1.EnvVar{Name: "BOTTLE_PROMPT_FILE", Value: &p})
	}
	return nil
}

// runExit is the plugin's outcome for a finished run.
func runExit(r *v1.BottleRun) error {
	if r.Status.ExitCode != nil {
		if code := int(*r.Status.ExitCode); code != 0 {
			return exec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
		}
		return nil
	}
	return &ExitError{Code: runExitNoCode, Err: fmt.Errorf("bottlerun %q %s (%s): %s", r.Name, strings.ToLower(string(r.Status.Phase)), r.Status.Reason, r.Status.Message)}
}

func interrupted(ctx context.Context, err error, name string, rm bool, errOut io.Writer) error {
	if ctx.Err() == nil {
		return err
	}
	if rm {
		_, _ = fmt.Fprintf(errOut, "interrupted: deleting bottlerun/%s (this cancels it)\n", name)
	} else {
		_, _ = fmt.Fprintf(errOut, "interrupted: bottlerun/%s goes on; its result stays in its status\n", name)
	}
	return &ExitError{Code: 130}
}

// waitFor polls the run until done says so. A watch would save the polls;
// a run's status changes a few times in its life, so a poll is cheap.
func (c *runClient) waitFor(ctx context.Context, key types.NamespacedName, every time.Duration, done func(*v1.BottleRun) bool) (*v1.BottleRun, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r, err := c.get(ctx, key)
		if err != nil {
			return nil, err
		}
		if done(r) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// runLog is one read of bottleruns/log.
type runLog struct {
	namespace, name string
	follow          bool
}

func (l *runLog) stream(ctx context.Context, cfg *rest.Config, w io.Writer) error {
	rc, err := subresourceClient(cfg)
	if err != nil {
		return err
	}
	req := rc.Get().Namespace(l.namespace).Resource(v1.BottleRunResource).Name(l.name).
		SubResource(v1.SubresourceLog).Param("follow", strconv.FormatBool(l.follow))
	body, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = body.Close() }()
	_, err = io.Copy(w, body)
	return err
}
