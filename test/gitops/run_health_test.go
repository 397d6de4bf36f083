package gitops

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// The BottleRun's health as Argo CD (the Lua in config/argocd) and Flux
// (kstatus) see it, over the statuses the agent writes
// (controllers/agent/run_controller.go: pending, start, finish).
func TestBottleRunHealth(t *testing.T) {
	script := argoHealthLuaOf(t, "resource.customizations.health.agents.bot-bottle.dev_BottleRun")
	cases := []struct {
		name, status string
		argo         string
		kstatus      status.Status
		message      string
	}{
		{"no status yet (the CRD's default)", `observedGeneration: 0`, "Progressing", status.InProgressStatus, "Waiting for the node agent"},
		{"pending", `
phase: Pending
observedGeneration: 1
reason: Waiting
message: waiting for Bottle "reviewer" to be Ready (phase Provisioning)
conditions:
- {type: Reconciling, status: "True", reason: Waiting, message: waiting, lastTransitionTime: "2026-01-01T00:00:00Z"}
`, "Progressing", status.InProgressStatus, `Pending: waiting for Bottle "reviewer"`},
		{"running", `
phase: Running
observedGeneration: 1
reason: Running
message: running in Bottle "reviewer" as node
conditions:
- {type: Reconciling, status: "True", reason: Running, message: running, lastTransitionTime: "2026-01-01T00:00:00Z"}
`, "Progressing", status.InProgressStatus, "Running: running in Bottle"},
		{"succeeded", `
phase: Succeeded
observedGeneration: 1
exitCode: 0
reason: Succeeded
conditions:
- {type: Complete, status: "True", reason: Succeeded, message: exited 0, lastTransitionTime: "2026-01-01T00:00:00Z"}
`, "Healthy", status.CurrentStatus, "exited 0"},
		{"failed", `
phase: Failed
observedGeneration: 1
exitCode: 3
reason: NonZeroExit
conditions:
- {type: Failed, status: "True", reason: NonZeroExit, message: exited with code 3, lastTransitionTime: "2026-01-01T00:00:00Z"}
- {type: Stalled, status: "True", reason: NonZeroExit, message: exited with code 3, lastTransitionTime: "2026-01-01T00:00:00Z"}
`, "Degraded", status.FailedStatus, "NonZeroExit: exited with code 3"},
		{"lost", `
phase: Failed
observedGeneration: 1
reason: Lost
conditions:
- {type: Failed, status: "True", reason: Lost, message: never started again, lastTransitionTime: "2026-01-01T00:00:00Z"}
- {type: Stalled, status: "True", reason: Lost, message: never started again, lastTransitionTime: "2026-01-01T00:00:00Z"}
`, "Degraded", status.FailedStatus, "Lost: never started again"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := "apiVersion: agents.bot-bottle.dev/v1alpha1\nkind: BottleRun\nmetadata: {name: review, namespace: team, generation: 1}\nstatus:\n" +
				indent(c.status)
			raw, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			obj := u.Object
			health, msg := runHealth(t, script, obj)
			if health != c.argo || !strings.Contains(msg, c.message) {
				t.Errorf("Argo CD: %s %q, want %s containing %q", health, msg, c.argo, c.message)
			}
			res, err := status.Compute(u)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.kstatus {
				t.Errorf("kstatus: %s, want %s", res.Status, c.kstatus)
			}
		})
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
