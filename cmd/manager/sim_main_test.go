package main

import (
	"os"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// simDir holds the simulator testutil.Simulator builds once for this test
// binary: it must outlive every test (a test's TempDir would not).
var simDir string

// runMainEnv makes this test binary be bin/manager: TestExitCodes runs it
// again with its flags and checks how main ends.
const runMainEnv = "BOTTLE_MANAGER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	testutil.MainWithSimDir(m, "manager-test-", &simDir)
}
