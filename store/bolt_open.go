package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// openDB opens path with bbolt, read-only (shared lock, never writes) or
// read-write (exclusive lock).
//
// Durability and layout choices:
//   - NoSync stays false: every commit is fdatasynced before Commit returns,
//     which the outbox guarantee ("no lost transition") rests on.
//   - The freelist is synced (NoFreelistSync false). With it unsynced, every
//     read-write open rebuilds the freelist by walking the whole file, which
//     is slow for a large store and panics (inside bbolt.Open, where the file
//     lock would leak) on a damaged page. Writing the freelist costs one page
//     per transaction even after a refresh has rewritten every enrichment of
//     a million instances (254 free pages; BenchmarkFreelistWrites: 36 KiB
//     per small commit synced, 32 KiB unsynced, and an open of 0.24 ms
//     against 367 ms).
//   - FreelistMapType: allocation from the freelist in O(1) instead of a
//     scan of a sorted array, which matters once a large file is fragmented;
//     it is the type etcd uses.
func openDB(path string, opts Options, readOnly bool) (db *bbolt.DB, err error) {
	var file *os.File
	bopts := &bbolt.Options{
		Timeout:        opts.LockTimeout,
		ReadOnly:       readOnly,
		NoSync:         false,
		NoFreelistSync: opts.unsyncedFreelist,
		FreelistType:   bbolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// bbolt panicked half way through Open: release the file (and
			// with it the lock) ourselves.
			if file != nil {
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("open store %s: bbolt panicked reading it (%v), left untouched: %w", path, r, ErrCorrupt)
		}
	}()
	db, err = bbolt.Open(path, 0o600, bopts)
	if err == nil {
		return db, nil
	}
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: another cvmwatch process holds it (gave up after %s): %w", path, opts.LockTimeout, ErrLocked)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return nil, fmt.Errorf("open store %s: %w", path, err)
	default:
		return nil, fmt.Errorf("open store %s: not a readable bbolt file, left untouched: %w: %w", path, ErrCorrupt, err)
	}
}

// inspect decides, without writing, whether the existing file at path may be
// opened for writing: a bbolt file, not truncated, carrying cvmwatch's
// format marker in a version this build reads, and, if opts.Check, passing
// bbolt's consistency check.
func inspect(path string, opts Options) (err error) {
	db, err := openDB(path, opts, true)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("open store %s: %w", path, cerr)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("open store %s: bbolt panicked reading it (%v), left untouched: %w", path, r, ErrCorrupt)
		}
	}()
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		// bbolt trusts the meta page and faults on pages past the end of
		// the file: check the file holds every page the meta page claims.
		if tx.Size() > info.Size() {
			return fmt.Errorf("file has %d bytes but its pages end at %d (truncated?), left untouched: %w", info.Size(), tx.Size(), ErrCorrupt)
		}
		if _, err := checkFormat(tx); err != nil {
			return err
		}
		if opts.Check {
			return checkConsistency(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	return nil
}

// checkFormat reports whether tx sees an empty bbolt file (no bucket at
// all), and otherwise checks that it is a cvmwatch store in a format
// version this build reads.
func checkFormat(tx *bbolt.Tx) (empty bool, err error) {
	marker := tx.Bucket([]byte(bucketFormat))
	if marker == nil {
		k, _ := tx.Cursor().First()
		if k == nil {
			return true, nil
		}
		return false, fmt.Errorf("bbolt file without the cvmwatch format marker (it holds bucket %s), left untouched: %w", watcher.Quote(string(k)), ErrNotOurs)
	}
	v := marker.Get([]byte(keyFormat))
	if len(v) != 4 || binary.BigEndian.Uint32(v) == 0 {
		return false, fmt.Errorf("format marker %x is not a version, left untouched: %w", v, ErrCorrupt)
	}
	if ver := binary.BigEndian.Uint32(v); ver > formatVersion {
		return false, fmt.Errorf("format version %d, this build reads up to %d; left untouched: %w", ver, formatVersion, ErrNewerFormat)
	}
	if tx.Bucket([]byte(bucketTargets)) == nil {
		return false, fmt.Errorf("no %q bucket, left untouched: %w", bucketTargets, ErrCorrupt)
	}
	return false, nil
}

// checkConsistency runs bbolt's consistency check over the whole file and
// reports the first problems it finds.
func checkConsistency(tx *bbolt.Tx) error {
	const keep = 5
	var errs []error
	n := 0
	for err := range tx.Check() { // drain: the checker goroutine sends until done
		if n++; n <= keep {
			errs = append(errs, err)
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("consistency check found %d problems, left untouched: %w: %w", n, ErrCorrupt, errors.Join(errs...))
}

// initFormat writes the format marker and the targets bucket into an empty
// file (new, or created by a process that died before writing them), and
// checks the format of any other file. It writes nothing to a file that is
// already a store.
func initFormat(db *bbolt.DB) (created bool, err error) {
	var empty bool
	err = db.View(func(tx *bbolt.Tx) error {
		empty, err = checkFormat(tx)
		return err
	})
	if err != nil || !empty {
		return false, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if empty, err := checkFormat(tx); err != nil || !empty {
			return err
		}
		marker, err := tx.CreateBucket([]byte(bucketFormat))
		if err != nil {
			return err
		}
		if err := marker.Put([]byte(keyFormat), binary.BigEndian.AppendUint32(nil, formatVersion)); err != nil {
			return err
		}
		_, err = tx.CreateBucket([]byte(bucketTargets))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("initialize: %w", err)
	}
	return true, nil
}
