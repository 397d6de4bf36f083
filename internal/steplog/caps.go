package steplog

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A Bottle's logs are bounded by its steps (at most 32, each at most
// Limit bytes; Prune drops the logs of steps no longer in its spec). The
// node's are bounded by NodeLimit: beginning a log first removes the
// oldest finished logs until the store, with room for the new one, fits.
// Logs being written are never removed.

// SetNodeLimit bounds the bytes of every log of the node together; 0 (the
// default) leaves them unbounded.
func (s *Store) SetNodeLimit(n int64) {
	s.mu.Lock()
	s.nodeLimit = n
	s.mu.Unlock()
}

// finishedLog is one finished step log on disk.
type finishedLog struct {
	data  string
	bytes int64
	mod   time.Time
}

// makeRoom removes the oldest finished logs until the store's logs plus
// need bytes fit the node limit.
func (s *Store) makeRoom(need int64) error {
	s.mu.Lock()
	limit := s.nodeLimit
	live := map[string]bool{}
	for k := range s.live {
		uid, step, _ := strings.Cut(k, "/")
		data, _ := s.paths(uid, step)
		live[data] = true
	}
	s.mu.Unlock()
	if limit <= 0 {
		return nil
	}
	var logs []finishedLog
	var total int64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		total += fi.Size()
		if !live[path] {
			logs = append(logs, finishedLog{data: path, bytes: fi.Size(), mod: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].mod.Before(logs[j].mod) })
	var errs []error
	for _, l := range logs {
		if total+need <= limit {
			break
		}
		meta := strings.TrimSuffix(l.data, ".log") + ".meta"
		if err := os.Remove(l.data); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		_ = os.Remove(meta)
		total -= l.bytes
	}
	return errors.Join(errs...)
}

// Sweep removes the logs of every UID known does not name (a Bottle or
// run deleted while no agent ran here, or whose finalizer was removed by
// hand), except logs being written. It returns how many UIDs it removed.
func (s *Store) Sweep(known func(uid string) bool) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	live := map[string]bool{}
	for k := range s.live {
		uid, _, _ := strings.Cut(k, "/")
		live[uid] = true
	}
	s.mu.Unlock()
	n := 0
	var errs []error
	for _, e := range entries {
		uid := e.Name()
		if !e.IsDir() || !uidRE.MatchString(uid) || live[uid] || known(uid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.dir, uid)); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
