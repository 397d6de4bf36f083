// Package execapi serves `bottles/exec`, `bottles/attach`, `bottles/log`,
// `bottleruns/log` and `bottletemplates/log` (the table in subresources.go) as an
// aggregated API (group subresources.agents.bot-bottle.dev), the way
// KubeVirt's virt-api serves VM consoles:
//
//	kubectl bottle exec ─▶ kube-apiserver ─(front-proxy mTLS)─▶ gateway ─(agent mTLS)─▶ node agent ─▶ smolvm exec -i [-t]
//
// Every node agent runs one Server. Behind the APIService it is a gateway:
// it authenticates the aggregator's front-proxy client certificate, asks the
// API server whether the user may `create bottles/exec` (or attach) with a
// SubjectAccessReview, and either runs the session itself (the Bottle is on
// its node) or proxies the WebSocket to the owning node's agent endpoint,
// which only accepts client certificates from the exec CA.
//
// Sessions speak Kubernetes' v5.channel.k8s.io WebSocket protocol, so
// client-go's remotecommand.NewWebSocketExecutor (kubectl's own client) is
// the client. See docs/exec.md.
package execapi
