package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// standInClaude is installed the way the sample's install-claude step
// installs the real one (npm install -g as node, with the sample's
// NPM_CONFIG_PREFIX), offline: it prints what attach must give claude.
const standInClaude = `#!/usr/bin/env node
const os = require('os');
console.log('claude-standin args=' + JSON.stringify(process.argv.slice(2)));
console.log('user=' + os.userInfo().username);
console.log('tty=' + Boolean(process.stdin.isTTY && process.stdout.isTTY));
console.log('key=' + (process.env.ANTHROPIC_API_KEY === 'sk-ant-replace-me' ? 'from-secret' : 'missing'));
`

const installStandIn = `set -e
d=$(mktemp -d)
cat > "$d/cli.js"
printf '%s' '{"name":"@anthropic-ai/claude-code","version":"0.0.0-standin","bin":{"claude":"cli.js"}}' > "$d/package.json"
cd "$d" && npm pack --silent >/dev/null
npm install -g --offline --no-audit --no-fund "$d"/anthropic-ai-claude-code-0.0.0-standin.tgz >/dev/null
command -v claude
`

// kubectlIn runs kubectl with stdin.
func (d *devEnv) kubectlIn(ctx context.Context, stdin string, args ...string) (string, string, error) {
	bin := filepath.Join(d.dir, "bin")
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), args...)
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = append(append([]string{}, d.env...), "KUBECONFIG="+filepath.Join(d.dir, "kubeconfig"), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// devSessionChecks: from the README's sample to a working claude session,
// and the other things a developer does in the dev cluster.
func devSessionChecks(ctx context.Context, t *testing.T, d *devEnv) {
	t.Helper()
	// The session environment holds spec.env: the npm prefix (so npm -g
	// installs where the login PATH looks) and the Secret's key.
	out, errOut, err := d.kubectlIn(ctx, standInClaude, "bottle", "exec", "reviewer", "-i", "--", "sh", "-c", installStandIn)
	if err != nil || strings.TrimSpace(out) != "/home/node/.local/bin/claude" {
		t.Fatalf("installing the stand-in claude as the sample would: %v, stdout %q, stderr %q", err, out, errOut)
	}
	// attach on a TTY (forced: the test's stdin is not a terminal).
	out, errOut, err = d.kubectlIn(ctx, "", "bottle", "attach", "reviewer", "-t")
	out = strings.ReplaceAll(out, "\r\n", "\n")
	for _, want := range []string{
		`claude-standin args=["--append-system-prompt-file","/home/node/.claude/prompt.md"]` + "\n",
		"user=node\n", "tty=true\n", "key=from-secret\n",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("attach -t: %v; output %q lacks %q (stderr %q)", err, out, want, errOut)
		}
	}
	// A pipe gets no TTY and no warning.
	out, errOut, err = d.kubectlIn(ctx, "summarise\n", "bottle", "attach", "reviewer", "--", "-p")
	if err != nil || !strings.Contains(out, `args=["--append-system-prompt-file","/home/node/.claude/prompt.md","-p"]`) ||
		!strings.Contains(out, "tty=false") || strings.Contains(errOut, "TTY") {
		t.Errorf("piped attach: %v, stdout %q, stderr %q", err, out, errOut)
	}

	// The steps' full output, through bottles/log.
	out, errOut, err = d.kubectl(ctx, "bottle", "logs", "reviewer", "--step", "whoami")
	if err != nil || out != "provisioning as node in /home/node\n" {
		t.Errorf("logs --step whoami: %v, %q (stderr %q)", err, out, errOut)
	}
	// Friction: case-insensitive phases; every step listed; REASON and
	// MESSAGE with -o wide; completion through kubectl.
	if out, errOut, err = d.kubectl(ctx, "bottle", "wait", "reviewer", "--for=ready", "--timeout=30s"); err != nil {
		t.Errorf("wait --for=ready: %v %q %q", err, out, errOut)
	}
	if out, _, err = d.kubectl(ctx, "bottle", "results", "reviewer"); err != nil || strings.Count(out, "Succeeded") != 3 {
		t.Errorf("results: %v\n%s", err, out)
	}
	if out, _, err = d.kubectl(ctx, "get", "bottles", "-o", "wide"); err != nil || !strings.Contains(out, "REASON") || !strings.Contains(out, "MESSAGE") {
		t.Errorf("get -o wide: %v\n%s", err, out)
	}
	if out, errOut, err = d.kubectl(ctx, "__complete", "bottle", "lo"); err != nil || !strings.Contains(out, "logs") {
		t.Errorf("kubectl __complete bottle lo (the kubectl_complete-bottle shim): %v %q %q", err, out, errOut)
	}
}
