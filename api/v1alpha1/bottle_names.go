package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// machineNameHashLen is the number of hex digits of the uid hash in
// MachineNameFor: 40 bits keeps collisions negligible for one node.
const machineNameHashLen = 10

// machineNamePrefixLen keeps generated names readable in `smolvm machine ls`.
const machineNamePrefixLen = 60

// MachineName is the smolvm machine this Bottle uses: the one already
// recorded in status, else the one spec asks for, else one derived from the
// object (MachineNameFor).
func (b *Bottle) MachineName() string {
	switch {
	case b.Status.MachineName != "":
		return b.Status.MachineName
	case b.Spec.MachineName != "":
		return b.Spec.MachineName
	default:
		return MachineNameFor(b.Namespace, b.Name, string(b.UID))
	}
}

// NodeName is the node whose agent owns the machine: the one spec binds
// the Bottle to (set once). status.nodeName only records it: sessions and
// logs are never routed by status, which a node's agent may write.
func (b *Bottle) NodeName() string { return b.Spec.NodeName }

// ReservationPodName is the name of the Pod that holds the Bottle's place
// and resources on its node: "bottle-" + the Bottle's name, bounded as
// BoundedName does.
func (b *Bottle) ReservationPodName() string { return BoundedName("bottle-", b.Name) }

// BoundedName is prefix+name when that fits an object name (253
// characters), else prefix, a readable cut of name and 16 hex digits of
// sha256(name): unique per name, and still a DNS subdomain.
func BoundedName(prefix, name string) string {
	const maxName = 253
	if len(prefix)+len(name) <= maxName {
		return prefix + name
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])[:16]
	// Cut where a DNS label may end: never before a '.' or after a '-'.
	cut := strings.TrimRight(name[:maxName-len(prefix)-len(h)-1], ".-")
	return prefix + cut + "-" + h
}

// ExecUser is the guest user sessions run as: spec.execUser, or its API
// default for objects stored before the default existed.
func (b *Bottle) ExecUser() string {
	if b.Spec.ExecUser != "" {
		return b.Spec.ExecUser
	}
	return DefaultExecUser
}

// MachineNameFor derives the machine name of a Kubernetes object: a readable,
// sanitized "namespace-name" prefix plus '-' and 10 hex digits of
// sha256(uid). The hash makes the name unique per object (a re-created object
// with the same name gets a new uid, hence a new machine), the prefix makes it
// recognisable. The result always passes smolvm's machine-name rules
// (at most 128 characters of [A-Za-z0-9_-], starting with a letter or digit,
// no trailing '-', no "--").
func MachineNameFor(namespace, name, uid string) string {
	key := uid
	if key == "" {
		// Without a uid the name is still deterministic, just not unique
		// across re-creations.
		key = namespace + "/" + name
	}
	sum := sha256.Sum256([]byte(key))
	suffix := hex.EncodeToString(sum[:])[:machineNameHashLen]

	prefix := sanitizeNamePart(namespace + "-" + name)
	if len(prefix) > machineNamePrefixLen {
		prefix = strings.TrimRight(prefix[:machineNamePrefixLen], "-_")
	}
	if prefix == "" {
		prefix = "m"
	}
	return prefix + "-" + suffix
}

// sanitizeNamePart maps anything outside [A-Za-z0-9_] to '-', collapses runs
// of '-', and trims leading non-alphanumerics and trailing '-'/'_' so that
// appending "-hash" can never produce "--".
func sanitizeNamePart(s string) string {
	var b strings.Builder
	lastDash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c) || c == '_':
			b.WriteByte(c)
			lastDash = false
		case !lastDash:
			b.WriteByte('-')
			lastDash = true
		}
	}
	out := b.String()
	out = strings.TrimLeftFunc(out, func(r rune) bool { return r > 0x7f || !isAlnum(byte(r)) })
	return strings.TrimRight(out, "-_")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
