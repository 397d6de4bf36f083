// Package bottleenv resolves a Bottle's spec.env, for provisioning steps
// (controllers) and sessions (execapi) alike. Values are never logged.
package bottleenv

import (
	"context"
	"fmt"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Lookup returns the value of a ConfigMap (secret false) or Secret key in
// the Bottle's namespace.
type Lookup func(ctx context.Context, ref *v1.KeyRef, secret bool) ([]byte, error)

// Resolve turns spec.env into the driver's form, in order (a later entry
// with the same name wins in the guest).
func Resolve(ctx context.Context, vars []v1.EnvVar, lookup Lookup) ([]smolvm.EnvVar, error) {
	out := make([]smolvm.EnvVar, 0, len(vars))
	for _, e := range vars {
		var val []byte
		switch {
		case e.Value != nil:
			val = []byte(*e.Value)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v, err := lookup(ctx, e.ValueFrom.SecretKeyRef, true)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			val = v
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			v, err := lookup(ctx, e.ValueFrom.ConfigMapKeyRef, false)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			val = v
		}
		out = append(out, smolvm.EnvVar{Name: e.Name, Value: string(val)})
	}
	return out, nil
}

// NeedsLookup says whether resolving vars reads any ConfigMap or Secret.
func NeedsLookup(vars []v1.EnvVar) bool {
	for _, e := range vars {
		if e.Value == nil && e.ValueFrom != nil {
			return true
		}
	}
	return false
}
