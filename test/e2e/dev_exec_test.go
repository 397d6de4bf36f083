package e2e

import (
	"context"
	"testing"
)

// devExecChecks covers `kubectl bottle exec` in the dev cluster once the
// exec API is wired into make dev.
func devExecChecks(ctx context.Context, t *testing.T, d *devEnv) {}
