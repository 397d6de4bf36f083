// Package gitops checks what GitOps tools conclude about Bottles: the Argo
// CD health check (config/argocd, run with gopher-lua, the interpreter Argo
// CD embeds) and kstatus (what Flux's wait: true uses) over a status fixture
// of every phase (test/fixtures/status).
package gitops

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

const healthKey = "resource.customizations.health.agents.bot-bottle.dev_Bottle"

// want is what Argo CD and kstatus must say about each fixture.
var want = map[string]struct {
	argo    string
	kstatus status.Status
	message string // part of Argo CD's message
}{
	"pending":                {"Progressing", status.InProgressStatus, "Pending: phase Pending"},
	"creating":               {"Progressing", status.InProgressStatus, "Creating"},
	"starting":               {"Progressing", status.InProgressStatus, "Starting"},
	"copyingfiles":           {"Progressing", status.InProgressStatus, "waiting for ConfigMap team/reviewer-prompt"},
	"provisioning":           {"Progressing", status.InProgressStatus, "running step 2/3 (configure)"},
	"ready":                  {"Healthy", status.CurrentStatus, "provisioning done"},
	"stopped":                {"Suspended", status.CurrentStatus, "disk is kept"},
	"failed":                 {"Degraded", status.FailedStatus, "Failed: step configure exited 3"},
	"deleting":               {"Progressing", status.TerminatingStatus, "Deleting"},
	"ready-stale-generation": {"Progressing", status.InProgressStatus, "observe generation 2"},
	"unschedulable":          {"Progressing", status.InProgressStatus, "Pending: 0/3 nodes are available: 3 Insufficient memory."},
	"unknown":                {"Progressing", status.InProgressStatus, "Unknown: the agent of node node-a"},
	"agent-gone":             {"Degraded", status.FailedStatus, "(for more than 5m0s)"},
}

// kstatusOf maps Argo CD's health onto kstatus' vocabulary.
var argoToKstatus = map[string]status.Status{
	"Healthy":     status.CurrentStatus,
	"Suspended":   status.CurrentStatus,
	"Progressing": status.InProgressStatus,
	"Degraded":    status.FailedStatus,
}

func TestHealthOfEveryPhase(t *testing.T) {
	script := argoHealthLua(t)
	fixtures := loadFixtures(t)

	// Every phase the API defines has a fixture, and every fixture an
	// expectation.
	seen := map[v1.Phase]bool{}
	for name, obj := range fixtures {
		seen[v1.Phase(obj.Object["status"].(map[string]any)["phase"].(string))] = true
		if _, ok := want[name]; !ok {
			t.Errorf("fixture %s has no expectation", name)
		}
	}
	for _, p := range []v1.Phase{v1.PhasePending, v1.PhaseCreating, v1.PhaseStarting, v1.PhaseCopyingFiles,
		v1.PhaseProvisioning, v1.PhaseReady, v1.PhaseStopped, v1.PhaseFailed, v1.PhaseDeleting, v1.PhaseUnknown} {
		if !seen[p] {
			t.Errorf("no fixture for phase %s", p)
		}
	}

	for _, name := range sortedKeys(fixtures) {
		obj, w := fixtures[name], want[name]
		t.Run(name, func(t *testing.T) {
			hs, msg := runHealth(t, script, obj.Object)
			if hs != w.argo {
				t.Errorf("Argo CD health = %s (%q), want %s", hs, msg, w.argo)
			}
			if !strings.Contains(msg, w.message) {
				t.Errorf("Argo CD message = %q, want it to contain %q", msg, w.message)
			}
			res, err := status.Compute(obj)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != w.kstatus {
				t.Errorf("kstatus = %s (%s), want %s", res.Status, res.Message, w.kstatus)
			}
			agree := argoToKstatus[hs] == res.Status ||
				hs == "Progressing" && res.Status == status.TerminatingStatus // Argo CD has no Terminating
			if !agree {
				t.Errorf("Argo CD says %s but kstatus says %s: the two disagree", hs, res.Status)
			}
		})
	}
}

// A Bottle the agent has not looked at yet: Argo CD waits. (kstatus cannot
// tell — without status.observedGeneration or conditions it reports
// Current — which is why the agent writes Reconciling=True on its first pass.)
func TestHealthWithoutStatus(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "agents.bot-bottle.dev/v1alpha1", "kind": "Bottle",
		"metadata": map[string]any{"name": "x", "namespace": "team", "generation": int64(1)},
	}
	if hs, _ := runHealth(t, argoHealthLua(t), obj); hs != "Progressing" {
		t.Errorf("health without status = %s, want Progressing", hs)
	}
}

// The Flux example waits for the Bottles it applies.
func TestFluxExampleWaits(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "config", "flux", "bottles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetKind() != "Kustomization" {
			continue
		}
		found = true
		if u.GetAPIVersion() != "kustomize.toolkit.fluxcd.io/v1" {
			t.Errorf("apiVersion %s", u.GetAPIVersion())
		}
		if wait, _, _ := unstructured.NestedBool(u.Object, "spec", "wait"); !wait {
			t.Error("spec.wait is not true")
		}
		if _, ok, _ := unstructured.NestedString(u.Object, "spec", "timeout"); !ok {
			t.Error("no spec.timeout: provisioning outlasts Flux's default")
		}
	}
	if !found {
		t.Fatal("no Flux Kustomization in config/flux/bottles.yaml")
	}
}

func argoHealthLua(t *testing.T) string {
	t.Helper()
	return argoHealthLuaOf(t, healthKey)
}

// argoHealthLuaOf is the health check config/argocd sets under key.
func argoHealthLuaOf(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "config", "argocd", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatal(err)
	}
	s := cm.Data[key]
	if s == "" {
		t.Fatalf("argocd-cm.yaml has no %s", key)
	}
	return s
}

// runHealth runs the script as Argo CD does: obj is a global table and the
// chunk returns {status=…, message=…}.
func runHealth(t *testing.T, script string, obj map[string]any) (string, string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health script: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health script returned %s, want a table", L.Get(-1).Type())
	}
	return lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message"))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range x {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range x {
			tbl.Append(toLua(L, e))
		}
		return tbl
	}
	panic("unexpected JSON value")
}

func loadFixtures(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(), "test", "fixtures", "status")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Each fixture is a valid Bottle: no misspelt field.
		var typed v1.Bottle
		if err := yaml.UnmarshalStrict(b, &typed); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil { // integers stay int64, as from the API server
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".yaml")] = u
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
