package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/certs"
)

// TestRerunKeepsTheCA: running gencerts again into the same directory
// without -rotate refuses rather than silently replacing the CA the
// cluster trusts; -force replaces it.
func TestRerunKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir}); err != nil {
		t.Fatal(err)
	}
	ca := certs.FilesIn(dir).ExecCAKey
	before, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	err = run([]string{"-out", dir})
	if err == nil || !strings.Contains(err.Error(), "already holds a CA (exec-ca.key): -rotate keeps it") {
		t.Fatalf("second run: %v", err)
	}
	if after, _ := os.ReadFile(ca); !bytes.Equal(before, after) {
		t.Fatal("the refused run replaced the CA key")
	}
	if err := run([]string{"-out", dir, "-force"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Clean(ca)); bytes.Equal(before, after) {
		t.Fatal("-force kept the old CA")
	}
	if err := run([]string{"-out", dir, "-rotate"}); err != nil {
		t.Fatalf("-rotate after: %v", err)
	}
}
