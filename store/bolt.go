package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// DefaultLockTimeout is how long Open waits for another process to release
// the store file when Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// Options configures Open. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds how long Open waits for the exclusive lock on the
	// file; zero means DefaultLockTimeout. Open never waits longer than about
	// twice this, and then fails with ErrLocked.
	LockTimeout time.Duration

	// Check runs bbolt's full consistency check (tx.Check, on a read-only
	// transaction) before the file is used, and refuses the file
	// (ErrCorrupt) if it finds anything. It reads every page of the file:
	// about 50 ms for a store of one million records (72 MB) in the page
	// cache, the time to read the file from disk otherwise. Without it Open
	// still refuses files that are not bbolt, are truncated, or are not
	// cvmwatch's, in well under a millisecond, and a damaged page met later
	// is reported as ErrCorrupt instead of crashing the process.
	Check bool

	// Logger receives one line when the store is opened or created. Nil
	// discards.
	Logger *slog.Logger

	// unsyncedFreelist opens bbolt with NoFreelistSync, for the benchmark
	// that compares both (see openDB).
	unsyncedFreelist bool
}

// Bolt is the durable watcher.Store: one bbolt file holding, per target, the
// instance records, the outbox and the scan metadata (see the package
// documentation for the layout). Each Commit is one fsynced bbolt
// transaction, so after a crash at any point the file holds either all of a
// commit or none of it. Only one process can have the file open.
//
// Bolt is safe for concurrent use; writes are serialised by bbolt. The
// function passed to Load runs inside a read transaction and must not call
// the store.
type Bolt struct {
	path string
	db   *bbolt.DB
	log  *slog.Logger

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
}

var _ watcher.Store = (*Bolt)(nil)

// Open opens the store file at path, creating it (mode 0600, parent
// directories 0700) if it does not exist. It refuses, without changing a
// byte of it, a file that bbolt cannot read or that is truncated
// (ErrCorrupt), a bbolt file that is not a cvmwatch store (ErrNotOurs), and
// a store written by a newer cvmwatch (ErrNewerFormat). If another process
// holds the file it fails with ErrLocked after Options.LockTimeout. Every
// error names the file.
func Open(path string, opts Options) (*Bolt, error) {
	start := time.Now()
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	case info.IsDir():
		return nil, fmt.Errorf("open store %s: is a directory", path)
	case info.Size() > 0:
		// Look before writing: opening read-write can write to the file
		// (bbolt rewrites a missing freelist), and a file we refuse must
		// stay as it is.
		if err := inspect(path, opts); err != nil {
			return nil, err
		}
	}
	db, err := openDB(path, opts, false)
	if err != nil {
		return nil, err
	}
	created, err := initFormat(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	log = log.With("path", path)
	log.Info("store opened", "created", created, "checked", opts.Check, "duration", time.Since(start))
	return &Bolt{path: path, db: db, log: log}, nil
}

// Path returns the file the store was opened on.
func (b *Bolt) Path() string { return b.path }

// Close waits for calls in progress, then closes the file and releases its
// lock. Calling it again returns nil; any other call after it returns
// watcher.ErrStoreClosed.
func (b *Bolt) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", b.path, err)
	}
	b.log.Debug("store closed")
	return nil
}

// acquire marks a call in progress, or fails once the store is closed.
func (b *Bolt) acquire() error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return watcher.ErrStoreClosed
	}
	return nil
}

func (b *Bolt) release() { b.mu.RUnlock() }

// view runs fn in a read transaction; see guard for inFn.
func (b *Bolt) view(inFn *bool, fn func(*bbolt.Tx) error) (err error) {
	defer b.guard(&err, inFn)()
	return b.db.View(fn)
}

// update runs fn in a read-write transaction, committed if fn returns nil.
func (b *Bolt) update(fn func(*bbolt.Tx) error) (err error) {
	defer b.guard(&err, nil)()
	return b.db.Update(fn)
}

// guard turns a panic or memory fault inside bbolt, which a damaged page
// can cause, into an error wrapping ErrCorrupt; bbolt has rolled the
// transaction back by then. A panic raised while *inFn is true comes from
// the caller's own function and is passed on unchanged. Use as
// defer b.guard(&err, inFn)().
func (b *Bolt) guard(errp *error, inFn *bool) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		r := recover()
		if r == nil {
			return
		}
		if inFn != nil && *inFn {
			panic(r)
		}
		*errp = fmt.Errorf("store %s: bbolt panicked (%v): %w", b.path, r, ErrCorrupt)
	}
}

// corrupt wraps err, found in the stored data of a target, with ErrCorrupt
// and the file name; callers add the target.
func (b *Bolt) corrupt(err error) error {
	return fmt.Errorf("store %s: %w: %w", b.path, ErrCorrupt, err)
}
