package agent

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// fakeConfigMap is one ConfigMap behind a pass's sources, counting full
// and metadata reads.
type fakeConfigMap struct {
	data       map[string][]byte
	rv         string
	gets, meta int
}

func (f *fakeConfigMap) sources(digests *sourceDigests) *sources {
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "cfg")
	return &sources{
		namespace: "ns", seen: map[string]map[string][]byte{}, digests: digests,
		get: func(_ context.Context, _ types.NamespacedName, _ bool) (map[string][]byte, string, error) {
			f.gets++
			if f.data == nil {
				return nil, "", notFound
			}
			return f.data, f.rv, nil
		},
		version: func(_ context.Context, _ types.NamespacedName, _ bool) (string, error) {
			f.meta++
			if f.data == nil {
				return "", notFound
			}
			return f.rv, nil
		},
	}
}

func TestSourcesReadValuesOnlyWhenTheResourceVersionMoved(t *testing.T) {
	cm := &fakeConfigMap{data: map[string][]byte{"a": []byte("one")}, rv: "1"}
	digests := newSourceDigests()
	ref := contentRef{cm: &v1.KeyRef{Name: "cfg", Key: "a"}}
	pass := func(want string, gets, meta int) {
		t.Helper()
		d, err := cm.sources(digests).digest(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if d != digest(content{data: []byte(want)}, nil) {
			t.Fatalf("digest is not that of %q", want)
		}
		if cm.gets != gets || cm.meta != meta {
			t.Fatalf("%d reads and %d metadata reads, want %d and %d", cm.gets, cm.meta, gets, meta)
		}
	}
	pass("one", 1, 0) // first sight: one read, no metadata read first
	pass("one", 1, 0) // same resync: nothing asked
	digests.expire()
	pass("one", 1, 1) // a resync: the version is confirmed
	cm.data["a"], cm.rv = []byte("two"), "2"
	pass("one", 1, 1) // changes wait for the next resync
	digests.expire()
	pass("two", 2, 2) // a new version: read again
	pass("two", 2, 2)

	// A key added after the digests were taken is read, not declared
	// missing.
	cm.data["b"], cm.rv = []byte("bee"), "3"
	d, err := cm.sources(digests).digest(context.Background(), contentRef{cm: &v1.KeyRef{Name: "cfg", Key: "b"}})
	if err != nil || d != digest(content{data: []byte("bee")}, nil) || cm.gets != 3 {
		t.Fatalf("new key: %v, %d reads", err, cm.gets)
	}

	// Gone: missing, never answered from what was known.
	cm.data = nil
	digests.expire()
	if _, err := cm.sources(digests).digest(context.Background(), ref); !isSourceMissing(err) {
		t.Fatalf("deleted ConfigMap: %v, want a missing source", err)
	}
}

func TestSourceDigestsForgetObjectsNoBottleNames(t *testing.T) {
	d := newSourceDigests()
	d.put("ConfigMap/ns/old", "1", map[string]string{"a": "x"})
	d.expire()
	if _, _, known := d.current("ConfigMap/ns/old"); !known {
		t.Fatal("forgotten after one resync")
	}
	d.expire()
	if _, _, known := d.current("ConfigMap/ns/old"); known {
		t.Fatal("still known after a whole period unused")
	}
}
