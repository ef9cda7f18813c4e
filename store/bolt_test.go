package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

var testTarget = watcher.Target{Account: "prod", Region: "ap-guangzhou"}

// mustOpen opens path; the store is closed when the test ends.
func mustOpen(tb testing.TB, path string, opts Options) *Bolt {
	tb.Helper()
	s, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s) = %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// testCommit returns a commit of n records ins-<prefix>-<i> and m events.
func testCommit(prefix string, n, m int) watcher.Commit {
	now := time.Date(2026, 11, 26, 23, 10, 0, 0, time.UTC)
	var c watcher.Commit
	for i := range n {
		c.Put = append(c.Put, watcher.Record{InstanceID: fmt.Sprintf("ins-%s-%06d", prefix, i), State: watcher.StateRunning, Sequence: 1, Since: now, LastSeen: now})
	}
	for i := range m {
		c.Events = append(c.Events, watcher.Event{
			ID: fmt.Sprintf("ev-%s-%d", prefix, i), Target: testTarget, InstanceID: fmt.Sprintf("ins-%s-%06d", prefix, i),
			From: watcher.StateRunning, To: watcher.StateStopped, Sequence: 2, ObservedAt: now, PreviousObservedAt: now.Add(-time.Minute),
		})
	}
	c.Meta = watcher.ScanMeta{Baselined: true, LastScan: now, LastComplete: now, Scans: 1, CompleteScans: 1}
	return c
}

// mustStoreFile writes a store with n records and m outbox entries at a new
// path, closes it and returns the path.
func mustStoreFile(t *testing.T, n, m int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cvmwatch.db")
	s := mustOpen(t, path, Options{})
	if _, _, err := s.Commit(t.Context(), testTarget, testCommit("f", n, m)); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return path
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantRefused checks that Open(path) fails with sentinel, names the file, and
// leaves it byte for byte as it was.
func wantRefused(t *testing.T, path string, opts Options, sentinel error) {
	t.Helper()
	before := mustReadFile(t, path)
	s, err := Open(path, opts)
	if err == nil {
		_ = s.Close()
		t.Fatalf("Open(%s) succeeded, want %v", path, sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("Open(%s) = %v, want %v", path, err, sentinel)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("Open error %q does not name the file", err)
	}
	if after := mustReadFile(t, path); !bytes.Equal(before, after) {
		t.Fatalf("Open changed the refused file (%d bytes before, %d after)", len(before), len(after))
	}
}

func TestOpenCreatesPrivateFileAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "cvmwatch")
	path := filepath.Join(dir, "cvmwatch.db")
	mustOpen(t, path, Options{})
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestOpenLockedFileFailsAfterTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cvmwatch.db")
	mustOpen(t, path, Options{})
	const timeout = 200 * time.Millisecond
	start := time.Now()
	s, err := Open(path, Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "another cvmwatch") {
		t.Fatalf("lock error %q does not name the file and the holder", msg)
	}
	// bbolt retries every 50ms and gives up one retry early. The upper
	// bound only proves that Open gives up: generous, for a loaded machine.
	if elapsed < timeout/2 || elapsed > 10*time.Second {
		t.Fatalf("second Open gave up after %v, want about %v", elapsed, timeout)
	}
}

func TestOpenAfterCloseTakesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cvmwatch.db")
	s := mustOpen(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, Options{LockTimeout: 100 * time.Millisecond})
}

func TestOpenRefusesUnreadableFile(t *testing.T) {
	real := mustReadFile(t, mustStoreFile(t, 3000, 100))
	rng := rand.New(rand.NewPCG(7, 7))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"TinyGarbage", garbage(100)},
		{"PageOfGarbage", garbage(4096)},
		{"LargeGarbage", garbage(256 << 10)},
		{"TextFile", []byte(strings.Repeat("not a database\n", 1000))},
		{"TruncatedToHalf", real[:len(real)/2]},
		{"TruncatedInsideMeta", real[:5000]},
		{"TruncatedToThreePages", real[:3*4096]},
		{"MetaPagesZeroed", append(make([]byte, 2*4096), real[2*4096:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cvmwatch.db")
			mustWriteFile(t, path, tc.data)
			wantRefused(t, path, Options{}, ErrCorrupt)
			wantRefused(t, path, Options{Check: true}, ErrCorrupt)
		})
	}
}

func TestOpenRefusesForeignBboltFile(t *testing.T) {
	for _, noFreelistSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoFreelistSync=%t", noFreelistSync), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: noFreelistSync})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucket([]byte("somebody-else"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			wantRefused(t, path, Options{}, ErrNotOurs)
		})
	}
}

// setFormat rewrites the format marker of the store file at path.
func setFormat(t *testing.T, path string, v []byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketFormat)).Put([]byte(keyFormat), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	path := mustStoreFile(t, 10, 1)
	setFormat(t, path, []byte{0, 0, 0, 2})
	wantRefused(t, path, Options{}, ErrNewerFormat)
}

func TestOpenRefusesBrokenFormatMarker(t *testing.T) {
	path := mustStoreFile(t, 10, 1)
	setFormat(t, path, []byte("v1"))
	wantRefused(t, path, Options{}, ErrCorrupt)
}

func TestOpenInitializesEmptyFiles(t *testing.T) {
	for name, prepare := range map[string]func(path string) error{
		"ZeroBytes": func(path string) error { return os.WriteFile(path, nil, 0o600) },
		"EmptyBbolt": func(path string) error {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				return err
			}
			return db.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cvmwatch.db")
			if err := prepare(path); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, path, Options{})
			if _, _, err := s.Commit(t.Context(), testTarget, testCommit("e", 1, 1)); err != nil {
				t.Fatalf("Commit = %v", err)
			}
		})
	}
}

// corruptPage overwrites page n of the file at path with garbage.
func corruptPage(t *testing.T, path string, n int) {
	t.Helper()
	b := mustReadFile(t, path)
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for i := n * 4096; i < (n+1)*4096 && i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
	mustWriteFile(t, path, b)
}

func TestCheckRefusesDamagedPage(t *testing.T) {
	path := mustStoreFile(t, 3000, 100)
	s := mustOpen(t, path, Options{})
	records, _ := roots(t, s) // a page in use
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	corruptPage(t, path, int(records))
	wantRefused(t, path, Options{Check: true}, ErrCorrupt)
}

func TestDamagedPageIsAnErrorNotACrash(t *testing.T) {
	size := len(mustReadFile(t, mustStoreFile(t, 1000, 50)))
	for page := 2; page < size/4096; page++ {
		path := mustStoreFile(t, 1000, 50)
		corruptPage(t, path, page)
		s, err := Open(path, Options{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("page %d: Open = %v, want ErrCorrupt or success", page, err)
			}
			continue
		}
		ctx := t.Context()
		_, lerr := s.Load(ctx, testTarget, func(watcher.Record) error { return nil })
		_, oerr := s.Outbox(ctx, testTarget, 0, 1000)
		_, _, serr := s.OutboxStats(ctx, testTarget)
		_, terr := s.Targets(ctx)
		aerr := s.Acknowledge(ctx, testTarget, 10)
		_, _, cerr := s.Commit(ctx, testTarget, testCommit("f", 1, 1))
		for _, err := range []error{lerr, oerr, serr, terr, aerr, cerr} {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("page %d: call on a damaged file = %v, want nil or ErrCorrupt", page, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("page %d: Close = %v", page, err)
		}
	}
}

func TestOpenWithCheckAcceptsAGoodFile(t *testing.T) {
	path := mustStoreFile(t, 3000, 100)
	s := mustOpen(t, path, Options{Check: true})
	depth, _, err := s.OutboxStats(t.Context(), testTarget)
	if err != nil || depth != 100 {
		t.Fatalf("OutboxStats = %d, %v; want 100", depth, err)
	}
}

// roots returns the root pages of target's records and outbox buckets: a
// bbolt write copies every page it changes and the path up to the root, so
// an unchanged root page means no page of the bucket was written.
func roots(t *testing.T, s *Bolt) (records, outbox uint64) {
	t.Helper()
	key, _ := targetKey(testTarget)
	err := s.db.View(func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil {
			return err
		}
		records, outbox = uint64(tb.records.Root()), uint64(tb.outbox.Root())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records == 0 || outbox == 0 {
		t.Fatalf("records root %d, outbox root %d: inline buckets prove nothing", records, outbox)
	}
	return records, outbox
}

func TestMetaOnlyCommitWritesNoRecordOrOutboxPage(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cvmwatch.db"), Options{})
	if _, _, err := s.Commit(t.Context(), testTarget, testCommit("m", 5000, 500)); err != nil {
		t.Fatal(err)
	}
	rec0, out0 := roots(t, s)

	before := s.db.Stats()
	meta := watcher.ScanMeta{Baselined: true, Scans: 2, CompleteScans: 2, LastScan: time.Now(), LastComplete: time.Now()}
	if _, _, err := s.Commit(t.Context(), testTarget, watcher.Commit{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	after := s.db.Stats()
	diff := after.Sub(&before)
	if rec1, out1 := roots(t, s); rec1 != rec0 || out1 != out0 {
		t.Fatalf("meta-only commit moved the records root %d -> %d or the outbox root %d -> %d", rec0, rec1, out0, out1)
	}
	// The meta bucket, its parents, the freelist and the meta page.
	if w := diff.TxStats.GetWrite(); w > 8 {
		t.Fatalf("meta-only commit wrote %d pages, want a handful", w)
	}
	t.Logf("meta-only commit: %d page writes, %d bytes of pages allocated", diff.TxStats.GetWrite(), diff.TxStats.GetPageAlloc())

	// Control: the same measure sees a one-record change.
	c := testCommit("m", 1, 0)
	c.Put[0].State = watcher.StateStopped
	if _, _, err := s.Commit(t.Context(), testTarget, c); err != nil {
		t.Fatal(err)
	}
	if rec2, out2 := roots(t, s); rec2 == rec0 || out2 != out0 {
		t.Fatalf("a one-record commit left the records root at %d (was %d) or moved the outbox root %d -> %d", rec2, rec0, out0, out2)
	}
}

func TestAcknowledgeOfNothingWritesNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cvmwatch.db"), Options{})
	if _, _, err := s.Commit(t.Context(), testTarget, testCommit("a", 1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Acknowledge(t.Context(), testTarget, 2); err != nil {
		t.Fatal(err)
	}
	before := s.db.Stats()
	for _, upTo := range []uint64{0, 1, 2} {
		if err := s.Acknowledge(t.Context(), testTarget, upTo); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Acknowledge(t.Context(), watcher.Target{Account: "other", Region: "r"}, 5); err != nil {
		t.Fatal(err)
	}
	after := s.db.Stats()
	if diff := after.Sub(&before); diff.TxStats.GetWrite() != 0 {
		t.Fatalf("acknowledging nothing wrote %d pages", diff.TxStats.GetWrite())
	}
}
