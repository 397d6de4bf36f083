package vmlauncher

import (
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// simDir holds the smolvm simulator when a test builds it
// (testutil.Simulator).
var simDir string

func TestMain(m *testing.M) { testutil.MainWithSimDir(m, "vmlauncher-test-", &simDir) }
