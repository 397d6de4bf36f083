// Command kubectl-bottle is the kubectl plugin for Bottles, `kubectl bottle
// VERB` (the verbs are internal/kubectlbottle's commands; `kubectl bottle
// --help` lists them). Install it on PATH (or with krew, see
// hack/krew/bottle.yaml.tmpl); docs/exec.md has a section per verb.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
)

func main() {
	os.Exit(kubectlbottle.Main(os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
