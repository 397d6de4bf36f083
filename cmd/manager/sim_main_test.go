package main

import (
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// simDir holds the simulator testutil.Simulator builds once for this test
// binary: it must outlive every test (a test's TempDir would not).
var simDir string

func TestMain(m *testing.M) { testutil.MainWithSimDir(m, "manager-test-", &simDir) }
