package execapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Which node's golden a template log request reads: the one named, else
// the only one; never a node whose entry names no golden (it keeps only
// retired goldens for their clones).
func TestGoldenNode(t *testing.T) {
	tpl := func(nodes ...v1.TemplateNodeStatus) *v1.BottleTemplate {
		return &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "tools"}, Status: v1.BottleTemplateStatus{Nodes: nodes}}
	}
	a := v1.TemplateNodeStatus{NodeName: "a", GoldenMachine: "g-a"}
	b := v1.TemplateNodeStatus{NodeName: "b", GoldenMachine: "g-b"}
	retiredOnly := v1.TemplateNodeStatus{NodeName: "r", RetiredGoldens: []v1.RetiredGolden{{MachineName: "g-old"}}}
	cases := []struct {
		name    string
		t       *v1.BottleTemplate
		asked   string
		want    string
		code    int32
		message string
	}{
		{"the only golden", tpl(a, retiredOnly), "", "a", 0, ""},
		{"the node named", tpl(a, b), "b", "b", 0, ""},
		{"several and none named", tpl(a, b), "", "", http.StatusBadRequest, `goldens on several nodes (a, b): name one with node=`},
		{"a node without a golden", tpl(a, retiredOnly), "r", "", http.StatusNotFound, `no golden on node "r" (its goldens are on: a)`},
		{"no golden anywhere", tpl(retiredOnly), "", "", http.StatusNotFound, `no golden on any node yet`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := goldenNode(c.t, c.asked)
			if c.code == 0 {
				if err != nil || got != c.want {
					t.Fatalf("goldenNode = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			var se *apierrors.StatusError
			if !errors.As(err, &se) || se.ErrStatus.Code != c.code || !strings.Contains(se.ErrStatus.Message, c.message) {
				t.Fatalf("goldenNode error = %v; want %d with %q", err, c.code, c.message)
			}
		})
	}
}
