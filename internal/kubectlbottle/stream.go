package kubectlbottle

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strconv"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Session describes one exec or attach stream.
type Session struct {
	Namespace, Name string
	// Subresource is "exec" or "attach".
	Subresource string
	// Command is the command for exec, extra claude arguments for attach.
	Command []string
	// User runs exec as this guest user instead of the Bottle's execUser.
	User string
	// Env adds NAME=VALUE entries to the session's environment (after
	// spec.env, so they override it).
	Env []string

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	SizeQueue      remotecommand.TerminalSizeQueue
}

// URL is the session's URL on the API server, with the same query
// parameters as kubectl exec.
func (s *Session) URL(cfg *rest.Config) (*url.URL, error) {
	rc, err := subresourceClient(cfg)
	if err != nil {
		return nil, err
	}
	req := rc.Get().Namespace(s.Namespace).Resource(v1.BottleResource).Name(s.Name).SubResource(s.Subresource)
	for _, a := range s.Command {
		req = req.Param("command", a)
	}
	if s.User != "" {
		req = req.Param("user", s.User)
	}
	for _, kv := range s.Env {
		req = req.Param("env", kv)
	}
	req = req.Param("stdin", strconv.FormatBool(s.Stdin != nil)).
		Param("stdout", strconv.FormatBool(s.Stdout != nil)).
		Param("stderr", strconv.FormatBool(s.Stderr != nil && !s.TTY)).
		Param("tty", strconv.FormatBool(s.TTY))
	return req.URL(), nil
}

// subresourceClient is a REST client for the aggregated API.
func subresourceClient(cfg *rest.Config) (*rest.RESTClient, error) {
	// The aggregated API serving the sessions and logs (internal/execapi).
	gv := v1.SubresourceGroupVersion
	return restClientFor(cfg, &gv)
}

// Stream runs the session over WebSocket (v5.channel.k8s.io, the protocol
// of kubectl exec; see v5client.go). A non-zero exit code comes back as
// k8s.io/client-go/util/exec.CodeExitError; a refusal by the server as an
// *apierrors.StatusError.
func (s *Session) Stream(ctx context.Context, cfg *rest.Config) error {
	u, err := s.URL(cfg)
	if err != nil {
		return err
	}
	return streamV5(ctx, cfg, u.String(), s)
}

// unwrapUpgrade surfaces the server's Status from a refused handshake, so
// callers see "Forbidden" rather than "unable to upgrade streaming request".
func unwrapUpgrade(err error) error {
	var up *httpstream.UpgradeFailureError
	if errors.As(err, &up) && up.Cause != nil {
		return up.Cause
	}
	return err
}
