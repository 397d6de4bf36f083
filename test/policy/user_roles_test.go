package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// docs/security.md ("Bottle viewer"): the view role reads step logs, as it
// reads pods/log, and nothing more through bottle-log.
func TestViewReadsStepLogsOnly(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "apiservice", "user_roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var found *rbacv1.ClusterRole
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		r := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal(doc, r); err != nil {
			t.Fatal(err)
		}
		if r.Name == "bottle-log" {
			found = r
		}
	}
	if found == nil {
		t.Fatal("no ClusterRole bottle-log in config/apiservice/user_roles.yaml")
	}
	if found.Labels["rbac.authorization.k8s.io/aggregate-to-view"] != "true" {
		t.Errorf("bottle-log is not aggregated to view: %v", found.Labels)
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{"subresources.agents.bot-bottle.dev"}, Resources: []string{"bottles/log", "bottleruns/log", "bottletemplates/log"}, Verbs: []string{"get"}}}
	if len(found.Rules) != 1 || found.Rules[0].String() != want[0].String() {
		t.Errorf("bottle-log grants %v, want exactly %v", found.Rules, want)
	}
}
