package agent

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// sourceMissing says that a ConfigMap, Secret or key a phase needs is not
// there (yet), on the condition it blocks, and looks again soon.
func (r *BottleReconciler) sourceMissing(s *scope, cond string, err error) (bool, ctrl.Result, error) {
	if !isSourceMissing(err) {
		return false, ctrl.Result{}, err
	}
	msg := err.Error()
	s.setCondition(cond, metav1.ConditionFalse, v1.ReasonSourceNotFound, msg)
	s.wait(v1.ReasonSourceNotFound, msg)
	return false, ctrl.Result{RequeueAfter: r.SourceRetryPeriod}, nil
}

// content is one resolved value and whether it came from a Secret (secret
// digests are keyed HMACs, so status never carries a plain hash of a secret).
type content struct {
	data   []byte
	secret bool
}

// contentRef is where a file's content comes from: exactly one is set.
type contentRef struct {
	inline  *string
	cm, sec *v1.KeyRef
}

// sources resolves ConfigMap and Secret keys on demand through the uncached
// reader, so the agent never holds a cluster-wide cache of either. Each
// object is read at most once per pass, and only when its content is
// needed (a file to copy, a step's env) or its resourceVersion moved since
// its digests were last taken (see sourceDigests).
type sources struct {
	get       func(ctx context.Context, key types.NamespacedName, secret bool) (data map[string][]byte, rv string, err error)
	version   func(ctx context.Context, key types.NamespacedName, secret bool) (rv string, err error)
	digests   *sourceDigests
	digestKey []byte
	namespace string
	seen      map[string]map[string][]byte
}

func (r *BottleReconciler) newSources(namespace string) *sources {
	return sourcesIn(r.APIReader, r.sourceDigests, r.DigestKey, namespace)
}

// sourcesIn reads one namespace's ConfigMaps and Secrets through reader
// (uncached), for a Bottle's or a template's env and files.
func sourcesIn(reader client.Reader, digests *sourceDigests, digestKey []byte, namespace string) *sources {
	return &sources{
		namespace: namespace,
		seen:      map[string]map[string][]byte{},
		digests:   digests,
		digestKey: digestKey,
		get: func(ctx context.Context, key types.NamespacedName, secret bool) (map[string][]byte, string, error) {
			if secret {
				var sec corev1.Secret
				if err := reader.Get(ctx, key, &sec); err != nil {
					return nil, "", err
				}
				return sec.Data, sec.ResourceVersion, nil
			}
			var cm corev1.ConfigMap
			if err := reader.Get(ctx, key, &cm); err != nil {
				return nil, "", err
			}
			data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
			return data, cm.ResourceVersion, nil
		},
		version: func(ctx context.Context, key types.NamespacedName, secret bool) (string, error) {
			// Metadata only: no value crosses the wire to learn that
			// nothing changed.
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kindOf(secret)))
			if err := reader.Get(ctx, key, m); err != nil {
				return "", err
			}
			return m.ResourceVersion, nil
		},
	}
}

func kindOf(secret bool) string {
	if secret {
		return "Secret"
	}
	return "ConfigMap"
}

func (s *sources) id(ref *v1.KeyRef, secret bool) string {
	return kindOf(secret) + "/" + s.namespace + "/" + ref.Name
}

func (s *sources) missing(ref *v1.KeyRef, secret bool, noKey bool) error {
	if noKey {
		return &errSourceMissing{fmt.Sprintf("%s %s/%s has no key %q", kindOf(secret), s.namespace, ref.Name, ref.Key)}
	}
	return &errSourceMissing{fmt.Sprintf("%s %s/%s not found", kindOf(secret), s.namespace, ref.Name)}
}

func (s *sources) readErr(ref *v1.KeyRef, secret bool, err error) error {
	if apierrors.IsNotFound(err) {
		return s.missing(ref, secret, false)
	}
	return fmt.Errorf("reading %s %s/%s: %w", kindOf(secret), s.namespace, ref.Name, err)
}

// object reads a whole ConfigMap or Secret (once per pass) and records the
// digests of its keys at its resourceVersion.
func (s *sources) object(ctx context.Context, ref *v1.KeyRef, secret bool) (map[string][]byte, error) {
	id := s.id(ref, secret)
	if data, ok := s.seen[id]; ok {
		return data, nil
	}
	data, rv, err := s.get(ctx, types.NamespacedName{Namespace: s.namespace, Name: ref.Name}, secret)
	if err != nil {
		return nil, s.readErr(ref, secret, err)
	}
	s.seen[id] = data
	if s.digests != nil {
		digests := make(map[string]string, len(data))
		for k, v := range data {
			digests[k] = digest(content{data: v, secret: secret}, s.digestKey)
		}
		s.digests.put(id, rv, digests)
	}
	return data, nil
}

func (s *sources) key(ctx context.Context, ref *v1.KeyRef, secret bool) ([]byte, error) {
	data, err := s.object(ctx, ref, secret)
	if err != nil {
		return nil, err
	}
	v, ok := data[ref.Key]
	if !ok {
		return nil, s.missing(ref, secret, true)
	}
	return v, nil
}

// file resolves a file's content from whichever source it names.
func (s *sources) file(ctx context.Context, ref contentRef) (content, error) {
	switch {
	case ref.inline != nil:
		return content{data: []byte(*ref.inline)}, nil
	case ref.cm != nil:
		d, err := s.key(ctx, ref.cm, false)
		return content{data: d}, err
	case ref.sec != nil:
		d, err := s.key(ctx, ref.sec, true)
		return content{data: d, secret: true}, err
	}
	return content{}, errors.New("no content source")
}

// digest is the digest a file's content has now (see digest), read from
// sourceDigests while the object's resourceVersion is the one they were
// taken at: an idle pass asks the API server for metadata at most once per
// resync, and for a value only when it changed.
func (s *sources) digest(ctx context.Context, ref contentRef) (string, error) {
	kref, secret := ref.cm, false
	if ref.sec != nil {
		kref, secret = ref.sec, true
	}
	if kref == nil || s.digests == nil {
		c, err := s.file(ctx, ref)
		if err != nil {
			return "", err
		}
		return digest(c, s.digestKey), nil
	}
	id := s.id(kref, secret)
	if _, read := s.seen[id]; !read {
		digests, current, known := s.digests.current(id)
		// Nothing known: the read below is needed anyway.
		if known && !current {
			rv, err := s.version(ctx, types.NamespacedName{Namespace: s.namespace, Name: kref.Name}, secret)
			if err != nil {
				return "", s.readErr(kref, secret, err)
			}
			digests, current = s.digests.confirm(id, rv)
		}
		// A key the digests lack may have been added since: only a read
		// can say it is missing.
		if d, ok := digests[kref.Key]; current && ok {
			return d, nil
		}
	}
	c, err := s.file(ctx, ref)
	if err != nil {
		return "", err
	}
	return digest(c, s.digestKey), nil
}

// env resolves spec.env into the driver's form. Values are never logged.
func (s *sources) env(ctx context.Context, vars []v1.EnvVar) ([]smolvm.EnvVar, error) {
	return bottleenv.Resolve(ctx, vars, s.key)
}
