package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// The workload every figure is measured on: a Bottle with one file and two steps,
// and the same work done by hand with the smolvm calls the controller
// makes (internal/smolvm, the agent's own driver): create, start, cp, and
// one exec per step.
const (
	benchNamespace = "default"
	benchImage     = "node:22-bookworm"
	benchUser      = "node"
	benchFilePath  = "/home/node/bench.txt"
	benchFileBody  = "a file the benchmark copies in\n"
	// nodeUID and nodeGID own the file by hand, as the image's node user.
	nodeUID, nodeGID = 1000, 1000
	benchFileMode    = 0o644
)

var benchSteps = []v1.ProvisionStep{
	{Name: "one", Script: "echo one"},
	{Name: "two", Script: "echo two"},
}

func benchBottle(name, node string) *v1.Bottle {
	mode := int32(benchFileMode)
	body := benchFileBody
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: v1.BottleSpec{
			NodeName: node,
			MachineSpec: v1.MachineSpec{
				Image:     benchImage,
				ExecUser:  benchUser,
				Files:     []v1.File{{Path: benchFilePath, Owner: benchUser, Mode: &mode, Inline: &body}},
				Provision: benchSteps,
			},
		},
	}
}

// byHand does one Bottle's work the way a person would with the smolvm
// CLI: the controller's own calls (same argv), one after the other, with
// nothing around them. cli's log is separate from the agent's.
type byHand struct {
	cli      *smolvm.CLI
	hostFile string
}

func newByHand(d *devEnv, workDir, log string) (*byHand, error) {
	hostFile := filepath.Join(workDir, "bench.txt")
	if err := os.WriteFile(hostFile, []byte(benchFileBody), 0o644); err != nil {
		return nil, err
	}
	cli := smolvm.New(d.smolvm(), "SMOLVM_DATA_DIR="+d.dataDir(), "SMOLVM_SIM_LATENCY="+d.latency, "SMOLVM_SIM_LOG="+log)
	return &byHand{cli: cli, hostFile: hostFile}, nil
}

// run makes machine name Ready by hand.
func (h *byHand) run(ctx context.Context, name string) error {
	// The controller's MachineSpec (controllers/agent/bottle_machine.go) for the
	// defaulted spec: 2 CPUs, 4096 MiB, no network, its four labels.
	spec := smolvm.MachineSpec{
		Name: name, Image: benchImage, CPUs: 2, MemoryMiB: 4096,
		Labels: map[string]string{
			v1.LabelUID: "by-hand-" + name, v1.LabelNamespace: benchNamespace,
			v1.LabelName: name, v1.LabelNetwork: "none",
		},
	}
	if err := h.cli.Create(ctx, spec); err != nil {
		return err
	}
	if err := h.cli.Start(ctx, name); err != nil {
		return err
	}
	if err := h.cli.CopyIn(ctx, name, h.hostFile, benchFilePath, benchFileMode, nodeUID, nodeGID); err != nil {
		return err
	}
	for _, step := range benchSteps {
		res, err := h.cli.Exec(ctx, smolvm.ExecRequest{
			Machine: name, User: benchUser, Script: step.Script, Mode: smolvm.ModeLogin,
			Timeout: time.Duration(600) * time.Second,
		})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("step %s by hand: exit %d: %s", step.Name, res.ExitCode, res.Stderr)
		}
	}
	return nil
}

// remove deletes machines made by hand (not measured).
func (h *byHand) remove(ctx context.Context, names []string) {
	for _, n := range names {
		_ = h.cli.Delete(ctx, n)
	}
}
