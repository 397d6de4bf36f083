package sourceaccess

import (
	"strings"
	"testing"
)

func TestReadNamespaces(t *testing.T) {
	got, err := ReadNamespaces(strings.NewReader("# comment\n\nteam-b\n  team-a  \n"))
	if err != nil || strings.Join(got, ",") != "team-a,team-b" {
		t.Fatalf("ReadNamespaces = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"Team\n":         `line 1: "Team" is not a namespace name`,
		"a\nb\na\n":      `line 3: namespace "a" is listed twice`,
		"ns; rm -rf /\n": `is not a namespace name`,
		"a\nkube system": `line 2: "kube system"`,
	} {
		if _, err := ReadNamespaces(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadNamespaces(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestRenderBindsTheReaderRoleInEachNamespace(t *testing.T) {
	files := Render([]string{"team-a", "team-b"})
	b := string(files[BindingsFile])
	if n := strings.Count(b, "kind: RoleBinding"); n != 2 {
		t.Fatalf("%d RoleBindings, want 2:\n%s", n, b)
	}
	for _, want := range []string{"namespace: team-a\n", "namespace: team-b\n", "name: " + ClusterRole + "\n", "name: " + AgentServiceAccount + "\n  namespace: " + AgentNamespace + "\n"} {
		if !strings.Contains(b, want) {
			t.Errorf("bindings lack %q", want)
		}
	}
	if !strings.Contains(string(files[KustomizationFile]), "- "+BindingsFile) {
		t.Error("the kustomization does not list the bindings")
	}
	if k := string(Render(nil)[KustomizationFile]); !strings.Contains(k, "resources: []") {
		t.Errorf("an empty list must render no resources:\n%s", k)
	}
}
