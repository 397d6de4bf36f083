package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-logr/logr"
)

// tempPattern names the private directories file contents pass through.
const tempPattern = "bottle-files-"

// minDigestKeyBytes is the shortest digest key accepted (256 bits).
const minDigestKeyBytes = 32

// prepareStart runs once before the controller starts.
func (r *BottleReconciler) prepareStart(log logr.Logger) error {
	if n, err := SweepTempDir(r.TempDir); err != nil {
		return fmt.Errorf("sweeping the temp directory: %w", err)
	} else if n > 0 {
		log.Info("removed file contents left behind by a previous run", "directories", n)
	}
	if len(r.DigestKey) == 0 {
		key := make([]byte, minDigestKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		r.DigestKey = key
		log.Info("no digest key given: Secret digests use a key of this process only, so Secret files are copied again after a restart")
	} else if len(r.DigestKey) < minDigestKeyBytes {
		return fmt.Errorf("the digest key has %d bytes, fewer than %d", len(r.DigestKey), minDigestKeyBytes)
	}
	return nil
}

// SweepTempDir removes the private directories a crashed agent left in dir
// (os.TempDir() when empty): they may hold Secret content, and the agent's
// /tmp is an emptyDir that outlives container restarts. It returns how many
// it removed.
func SweepTempDir(dir string) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempPattern) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// LoadDigestKey reads the install's digest key from a file (a mounted
// Secret only the agents read). A missing file returns nil, nil.
func LoadDigestKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key = []byte(strings.TrimSpace(string(key)))
	if len(key) < minDigestKeyBytes {
		return nil, fmt.Errorf("digest key %s has %d bytes, fewer than %d", path, len(key), minDigestKeyBytes)
	}
	return key, nil
}
