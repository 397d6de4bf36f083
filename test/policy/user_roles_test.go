package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// docs/security.md ("Bottle creator"): bottle-editor-role, aggregated into
// edit and admin, lets a creator read but never write the status of a
// Bottle, BottleTemplate or BottleRun (the agents' word on what ran).
func TestEditorCannotWriteStatus(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "bottle_editor_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, r); err != nil {
		t.Fatal(err)
	}
	if r.Name != "bottle-editor-role" || r.Labels["rbac.authorization.k8s.io/aggregate-to-edit"] != "true" {
		t.Fatalf("config/rbac/bottle_editor_role.yaml holds %q, labels %v", r.Name, r.Labels)
	}
	statusRead := false
	for _, rule := range r.Rules {
		for _, res := range rule.Resources {
			if !strings.HasSuffix(res, "/status") && res != "*" && !strings.HasSuffix(res, "/*") {
				continue
			}
			for _, v := range rule.Verbs {
				if v != "get" {
					t.Errorf("bottle-editor-role grants %s on %s", v, res)
				}
			}
			statusRead = statusRead || res == "bottles/status"
		}
	}
	if !statusRead {
		t.Error("bottle-editor-role no longer reads bottles/status: the rule this test checks moved")
	}
}
