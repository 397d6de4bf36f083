package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func TestSweepTempDirRemovesOnlyOurDirectories(t *testing.T) {
	dir := t.TempDir()
	left, err := os.MkdirTemp(dir, tempPattern)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "0"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "someone-else")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := SweepTempDir(dir)
	if err != nil || n != 1 {
		t.Fatalf("SweepTempDir = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("%s survived the sweep: %v", left, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the sweep removed another program's directory: %v", err)
	}
	if n, err := SweepTempDir(filepath.Join(dir, "missing")); err != nil || n != 0 {
		t.Errorf("sweeping a missing directory = %d, %v", n, err)
	}
}

func TestSecretDigestIsKeyed(t *testing.T) {
	short := []byte("1234")
	plain := sha256.Sum256(short)
	keyA, keyB := make([]byte, 32), make([]byte, 32)
	keyB[0] = 1
	secretA := digest(content{data: short, secret: true}, keyA)
	if secretA == hex.EncodeToString(plain[:]) {
		t.Fatal("a Secret's digest is its plain SHA-256")
	}
	if secretA == digest(content{data: short, secret: true}, keyB) {
		t.Fatal("the digest does not depend on the key")
	}
	if secretA != digest(content{data: short, secret: true}, keyA) {
		t.Fatal("the digest is not stable for one key")
	}
	if got := digest(content{data: short}, keyA); got != hex.EncodeToString(plain[:]) {
		t.Fatalf("non-secret digest = %s, want the plain SHA-256", got)
	}
}

func TestLoadDigestKey(t *testing.T) {
	dir := t.TempDir()
	if k, err := LoadDigestKey(filepath.Join(dir, "missing")); k != nil || err != nil {
		t.Fatalf("missing file = %v, %v; want nil, nil", k, err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, err := LoadDigestKey(short); err == nil {
		t.Fatal("a 3-byte key was accepted")
	}
	good := filepath.Join(dir, "good")
	_ = os.WriteFile(good, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	if k, err := LoadDigestKey(good); err != nil || string(k) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("LoadDigestKey = %q, %v", k, err)
	}
}
