package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/bottleenv"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// errSourceMissing marks a ConfigMap, Secret or key that does not exist
// (yet). The message names the object and key, never a value.
type errSourceMissing struct{ what string }

func (e *errSourceMissing) Error() string { return e.what }

func isSourceMissing(err error) bool {
	var m *errSourceMissing
	return errors.As(err, &m)
}

// content is one resolved value and whether it came from a Secret (secret
// digests are salted so status never carries a plain hash of a secret).
type content struct {
	data   []byte
	secret bool
}

// sources resolves ConfigMap and Secret keys on demand through the uncached
// reader, so the agent never holds a cluster-wide cache of either. Each
// object is read at most once per pass.
type sources struct {
	get       func(ctx context.Context, key types.NamespacedName, secret bool) (map[string][]byte, error)
	namespace string
	seen      map[string]map[string][]byte
}

func (r *BottleReconciler) newSources(namespace string) *sources {
	return &sources{
		namespace: namespace,
		seen:      map[string]map[string][]byte{},
		get: func(ctx context.Context, key types.NamespacedName, secret bool) (map[string][]byte, error) {
			if secret {
				var sec corev1.Secret
				if err := r.APIReader.Get(ctx, key, &sec); err != nil {
					return nil, err
				}
				return sec.Data, nil
			}
			var cm corev1.ConfigMap
			if err := r.APIReader.Get(ctx, key, &cm); err != nil {
				return nil, err
			}
			data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			return data, nil
		},
	}
}

func (s *sources) key(ctx context.Context, ref *v1.KeyRef, secret bool) ([]byte, error) {
	kind := "ConfigMap"
	if secret {
		kind = "Secret"
	}
	id := kind + "/" + ref.Name
	data, ok := s.seen[id]
	if !ok {
		var err error
		data, err = s.get(ctx, types.NamespacedName{Namespace: s.namespace, Name: ref.Name}, secret)
		if apierrors.IsNotFound(err) {
			return nil, &errSourceMissing{fmt.Sprintf("%s %s/%s not found", kind, s.namespace, ref.Name)}
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", kind, s.namespace, ref.Name, err)
		}
		s.seen[id] = data
	}
	v, ok := data[ref.Key]
	if !ok {
		return nil, &errSourceMissing{fmt.Sprintf("%s %s/%s has no key %q", kind, s.namespace, ref.Name, ref.Key)}
	}
	return v, nil
}

// file resolves a file's content from whichever source it names.
func (s *sources) file(ctx context.Context, inline *string, cm, sec *v1.KeyRef) (content, error) {
	switch {
	case inline != nil:
		return content{data: []byte(*inline)}, nil
	case cm != nil:
		d, err := s.key(ctx, cm, false)
		return content{data: d}, err
	case sec != nil:
		d, err := s.key(ctx, sec, true)
		return content{data: d, secret: true}, err
	}
	return content{}, errors.New("no content source")
}

// env resolves spec.env into the driver's form. Values are never logged.
func (s *sources) env(ctx context.Context, vars []v1.EnvVar) ([]smolvm.EnvVar, error) {
	return bottleenv.Resolve(ctx, vars, s.key)
}
