package execapi

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/bottleenv"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// sessionEnv is the environment of a session: spec.env resolved now, then
// the session's own env parameters (which override). The driver hands the
// values to smolvm through its own environment (--secret-env), never on a
// command line.
type sessionEnv struct {
	done chan struct{}
	env  []smolvm.EnvVar
	err  error
}

// resolveSessionEnv starts resolving the environment. A Bottle whose env
// names no ConfigMap or Secret resolves at once; otherwise the reads run
// while the WebSocket upgrade completes, so they add no round trip to the
// session's start.
func (s *Server) resolveSessionEnv(ctx context.Context, b *v1.Bottle, extra []smolvm.EnvVar) *sessionEnv {
	se := &sessionEnv{done: make(chan struct{})}
	resolve := func() {
		defer close(se.done)
		seen := map[string]map[string][]byte{}
		env, err := bottleenv.Resolve(ctx, b.Spec.Env, func(ctx context.Context, ref *v1.KeyRef, secret bool) ([]byte, error) {
			return s.lookupKey(ctx, b.Namespace, ref, secret, seen)
		})
		if err != nil {
			se.err = fmt.Errorf("cannot resolve the Bottle's env for this session: %w", err)
			return
		}
		se.env = append(env, extra...)
	}
	if bottleenv.NeedsLookup(b.Spec.Env) {
		go resolve()
	} else {
		resolve()
	}
	return se
}

func (se *sessionEnv) wait(ctx context.Context) ([]smolvm.EnvVar, error) {
	select {
	case <-se.done:
		return se.env, se.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookupKey reads a ConfigMap or Secret key through the uncached reader,
// each object once per session. Errors name the object and key, never a
// value.
func (s *Server) lookupKey(ctx context.Context, ns string, ref *v1.KeyRef, secret bool, seen map[string]map[string][]byte) ([]byte, error) {
	kind := "ConfigMap"
	if secret {
		kind = "Secret"
	}
	id := kind + "/" + ref.Name
	data, ok := seen[id]
	if !ok {
		key := types.NamespacedName{Namespace: ns, Name: ref.Name}
		if secret {
			var sec corev1.Secret
			if err := s.reader.Get(ctx, key, &sec); err != nil {
				return nil, fmt.Errorf("%s %s/%s: %w", kind, ns, ref.Name, err)
			}
			data = sec.Data
		} else {
			var cm corev1.ConfigMap
			if err := s.reader.Get(ctx, key, &cm); err != nil {
				return nil, fmt.Errorf("%s %s/%s: %w", kind, ns, ref.Name, err)
			}
			data = make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				data[k] = v
			}
		}
		seen[id] = data
	}
	v, ok := data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no key %q", kind, ns, ref.Name, ref.Key)
	}
	return v, nil
}

// parseEnvParams reads the session's env parameters (K=V, repeatable).
func parseEnvParams(values []string) ([]smolvm.EnvVar, error) {
	var out []smolvm.EnvVar
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envNameRE.MatchString(k) {
			return nil, badRequest("env must be NAME=VALUE with NAME a shell identifier ([A-Za-z_][A-Za-z0-9_]*), not %q", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, badRequest("the value of env %s contains a NUL byte", k)
		}
		out = append(out, smolvm.EnvVar{Name: k, Value: v})
	}
	return out, nil
}
