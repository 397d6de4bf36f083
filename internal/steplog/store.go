// Package steplog keeps the full output of provisioning steps on the node
// that ran them, for `kubectl bottle logs`. Each step's log is a ring file
// holding its last Limit bytes (stdout and stderr interleaved in the order
// the agent received them), a small timestamp index, and, once the step
// ended, a metadata file. Logs live under Dir/<Bottle UID>/ and are removed
// with the Bottle; all of them together stay under the node limit
// (caps.go), and Sweep removes those of UIDs no longer known.
//
// Writing never fails a step: a full disk loses log bytes, not results.
package steplog

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// DefaultLimit is how many bytes of a step's output are kept by default.
const DefaultLimit = 16 << 20

// ErrNotFound: no log for that step (it never ran on this node, or the
// Bottle was deleted).
var ErrNotFound = errors.New("no log for this step")

// uidRE: Kubernetes UIDs; anything else never becomes a directory name.
var uidRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// Store is every step log of one node.
type Store struct {
	dir   string
	limit int64

	mu   sync.Mutex
	live map[string]*stepLog // by key(uid, step): logs being written
	// latest is the step most recently begun per Bottle UID.
	latest map[string]string
	// nodeLimit bounds all logs together (SetNodeLimit); 0: unbounded.
	nodeLimit int64
}

// New opens (creating) the store in dir; limit <= 0 means DefaultLimit.
func New(dir string, limit int64) (*Store, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("step log directory: %w", err)
	}
	return &Store{dir: dir, limit: limit, live: map[string]*stepLog{}, latest: map[string]string{}}, nil
}

// Limit is the per-step bound in bytes.
func (s *Store) Limit() int64 { return s.limit }

func key(uid, step string) string { return uid + "/" + step }

// paths are the files of one step: names are hex-encoded so that any step
// name is a safe file name.
func (s *Store) paths(uid, step string) (data, meta string) {
	base := filepath.Join(s.dir, uid, hex.EncodeToString([]byte(step)))
	return base + ".log", base + ".meta"
}

// Begin starts a new log for a step, replacing what an earlier run of it
// left. The caller writes the step's output to the returned Writer and
// closes it when the step ends.
func (s *Store) Begin(uid, step string) (*Writer, error) {
	if !uidRE.MatchString(uid) {
		return nil, fmt.Errorf("step log: invalid UID %q", uid)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, uid), 0o700); err != nil {
		return nil, err
	}
	data, meta := s.paths(uid, step)
	// The log this step replaces goes first; then room for a full one.
	_ = os.Remove(data)
	_ = s.makeRoom(s.limit)
	_ = os.Remove(meta)
	f, err := os.OpenFile(data, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("step log: %w", err)
	}
	l := newStepLog(f, s.limit)
	s.mu.Lock()
	if old := s.live[key(uid, step)]; old != nil {
		old.finish("")
	}
	s.live[key(uid, step)] = l
	s.latest[uid] = step
	s.mu.Unlock()
	return &Writer{s: s, uid: uid, step: step, l: l, meta: meta}, nil
}

// Latest is the step most recently begun for the Bottle since this agent
// started, if any.
func (s *Store) Latest(uid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	step, ok := s.latest[uid]
	return step, ok
}

// open returns the step's log: the live one, or the finished one on disk.
func (s *Store) open(uid, step string) (*stepLog, func(), error) {
	if !uidRE.MatchString(uid) {
		return nil, nil, ErrNotFound
	}
	s.mu.Lock()
	l := s.live[key(uid, step)]
	if l != nil {
		l.refs++
	}
	s.mu.Unlock()
	if l != nil {
		return l, func() { s.release(l) }, nil
	}
	data, meta := s.paths(uid, step)
	f, err := os.Open(data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	l = newStepLog(f, s.limit)
	l.done = true
	var m metadata
	if raw, err := os.ReadFile(meta); err == nil && json.Unmarshal(raw, &m) == nil {
		l.total, l.marks, l.limit = m.Total, m.Marks, m.Limit
	} else if fi, err := f.Stat(); err == nil {
		// The agent stopped while the step ran: no record of how far the
		// ring went round, so the file is read as it is.
		l.total = fi.Size()
		l.limit = max(fi.Size(), 1)
	}
	return l, func() { _ = f.Close() }, nil
}

func (s *Store) release(l *stepLog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.refs--
	if l.refs == 0 && l.done {
		_ = l.f.Close()
	}
}

// Remove deletes every log of a Bottle.
func (s *Store) Remove(uid string) error {
	if !uidRE.MatchString(uid) {
		return nil
	}
	s.mu.Lock()
	for k, l := range s.live {
		if strings.HasPrefix(k, uid+"/") {
			// The writer still holds the file; it closes it.
			l.finish("")
			delete(s.live, k)
		}
	}
	delete(s.latest, uid)
	s.mu.Unlock()
	return os.RemoveAll(filepath.Join(s.dir, uid))
}

// Prune deletes the Bottle's logs of steps not named in keep (renamed or
// removed from its spec: they could no longer be read, yet stayed on the
// node's disk until the Bottle went). Logs being written are kept.
func (s *Store) Prune(uid string, keep []string) error {
	if !uidRE.MatchString(uid) {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, uid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, k := range keep {
		wanted[hex.EncodeToString([]byte(k))] = true
	}
	var errs []error
	for _, e := range entries {
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".log"), ".meta")
		if wanted[base] {
			continue
		}
		step, err := hex.DecodeString(base)
		if err != nil {
			continue // not a step's file
		}
		s.mu.Lock()
		_, live := s.live[key(uid, string(step))]
		s.mu.Unlock()
		if live {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, uid, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// metadata is written when a step ends, so a finished log reads back after
// the agent restarts.
type metadata struct {
	Total int64  `json:"total"`
	Limit int64  `json:"limit"`
	Marks []mark `json:"marks,omitempty"`
	Error string `json:"error,omitempty"`
}

// Writer receives one step's output. It never returns an error: losing log
// bytes must not fail the step (the first error is kept in the metadata).
type Writer struct {
	s         *Store
	uid, step string
	l         *stepLog
	meta      string
	closeOnce sync.Once
}

func (w *Writer) Write(p []byte) (int, error) {
	w.l.write(p, time.Now())
	return len(p), nil
}

// Close ends the step's log: followers see the end, and the metadata is
// written for later readers.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.l.finish("")
		w.l.mu.Lock()
		m := metadata{Total: w.l.total, Limit: w.l.limit, Marks: w.l.marks}
		if w.l.err != nil {
			m.Error = w.l.err.Error()
		}
		w.l.mu.Unlock()
		if raw, err := json.Marshal(m); err == nil {
			_ = os.WriteFile(w.meta, raw, 0o600)
		}
		w.s.mu.Lock()
		if w.s.live[key(w.uid, w.step)] == w.l {
			delete(w.s.live, key(w.uid, w.step))
		}
		w.s.mu.Unlock()
		w.s.release(w.l)
	})
	return nil
}

// Has says whether the step has a log (live or on disk).
func (s *Store) Has(uid, step string) bool {
	if !uidRE.MatchString(uid) {
		return false
	}
	s.mu.Lock()
	_, live := s.live[key(uid, step)]
	s.mu.Unlock()
	if live {
		return true
	}
	data, _ := s.paths(uid, step)
	_, err := os.Stat(data)
	return err == nil
}
