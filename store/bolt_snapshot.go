package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// targetBuckets are the sub-buckets of one target's bucket.
type targetBuckets struct {
	records, outbox, meta *bbolt.Bucket
	// enrich is nil until an enrichment is stored (see enrichBucket),
	// pending until an attribution is (see pendingBucket).
	enrich, pending *bbolt.Bucket
	parent          *bbolt.Bucket
}

// openTarget returns the buckets of the target stored under key, or nil if
// the target was never committed. It creates nothing.
func openTarget(tx *bbolt.Tx, key []byte) (*targetBuckets, error) {
	root := tx.Bucket([]byte(bucketTargets))
	if root == nil {
		return nil, fmt.Errorf("no %q bucket: %w", bucketTargets, ErrCorrupt)
	}
	t := root.Bucket(key)
	if t == nil {
		return nil, nil
	}
	tb := &targetBuckets{
		records: t.Bucket([]byte(bucketRecords)),
		outbox:  t.Bucket([]byte(bucketOutbox)),
		meta:    t.Bucket([]byte(bucketMeta)),
		enrich:  t.Bucket([]byte(bucketEnrich)),
		pending: t.Bucket([]byte(bucketAttribution)),
		parent:  t,
	}
	if tb.records == nil || tb.outbox == nil || tb.meta == nil {
		return nil, fmt.Errorf("target bucket lacks a sub-bucket: %w", ErrCorrupt)
	}
	return tb, nil
}

// createTarget returns the buckets of the target stored under key, creating
// those missing. Existing buckets are opened, not rewritten.
func createTarget(tx *bbolt.Tx, key []byte) (*targetBuckets, error) {
	root := tx.Bucket([]byte(bucketTargets))
	if root == nil {
		return nil, fmt.Errorf("no %q bucket: %w", bucketTargets, ErrCorrupt)
	}
	t, err := root.CreateBucketIfNotExists(key)
	if err != nil {
		return nil, err
	}
	tb := targetBuckets{parent: t, enrich: t.Bucket([]byte(bucketEnrich)), pending: t.Bucket([]byte(bucketAttribution))}
	if tb.records, err = t.CreateBucketIfNotExists([]byte(bucketRecords)); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucketRecords, err)
	}
	if tb.outbox, err = t.CreateBucketIfNotExists([]byte(bucketOutbox)); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucketOutbox, err)
	}
	if tb.meta, err = t.CreateBucketIfNotExists([]byte(bucketMeta)); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucketMeta, err)
	}
	return &tb, nil
}

// enrichBucket returns the enrich bucket, creating it if it is missing.
func (tb *targetBuckets) enrichBucket() (*bbolt.Bucket, error) {
	if tb.enrich != nil {
		return tb.enrich, nil
	}
	b, err := tb.parent.CreateBucket([]byte(bucketEnrich))
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucketEnrich, err)
	}
	tb.enrich = b
	return b, nil
}

// readScanMeta returns the target's scan metadata, zero if none was written.
func (tb *targetBuckets) readScanMeta() (watcher.ScanMeta, error) {
	v := tb.meta.Get([]byte(keyScan))
	if v == nil {
		return watcher.ScanMeta{}, nil
	}
	return decodeScanMeta(v)
}

// readNext returns the next outbox sequence to give out: 1 for a target
// that never had an event.
func (tb *targetBuckets) readNext() (uint64, error) {
	v := tb.meta.Get([]byte(keyNext))
	if v == nil {
		return 1, nil
	}
	if len(v) != 8 || binary.BigEndian.Uint64(v) == 0 {
		return 0, fmt.Errorf("next sequence %x is not a sequence", v)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Load calls fn for every record of target, in instance ID order, walking
// the records with a cursor inside one read transaction, and returns the
// target's scan metadata (zero for a target never committed). An error from
// fn stops the walk and is returned as it is. fn must not call the store.
func (b *Bolt) Load(ctx context.Context, target watcher.Target, fn func(watcher.Record) error) (watcher.ScanMeta, error) {
	if err := b.acquire(); err != nil {
		return watcher.ScanMeta{}, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return watcher.ScanMeta{}, fmt.Errorf("load: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", target, err)
	}
	var (
		meta  watcher.ScanMeta
		inFn  bool
		fnErr error
	)
	err = b.view(&inFn, func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil || tb == nil {
			return err
		}
		if meta, err = tb.readScanMeta(); err != nil {
			return b.corrupt(err)
		}
		in := newInterner()
		c := tb.records.Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if v == nil {
				return b.corrupt(fmt.Errorf("record %s is a bucket", watcher.Quote(string(k))))
			}
			r, err := decodeRecord(k, v, in)
			if err != nil {
				return b.corrupt(fmt.Errorf("record %s: %w", watcher.Quote(string(k)), err))
			}
			inFn = true
			fnErr = fn(r)
			inFn = false
			if fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return watcher.ScanMeta{}, fnErr
	case err != nil:
		return watcher.ScanMeta{}, fmt.Errorf("load %s: %w", target, err)
	}
	return meta, nil
}

// encodedCommit is a Commit encoded before its transaction starts, so the
// write lock is held only for the bbolt work. All slices point into one
// buffer that lives until the transaction ends, as bbolt requires.
type encodedCommit struct {
	puts    []keyValue // sorted by key: bbolt inserts sorted keys fastest
	enrich  []keyValue // sorted by key
	pending []keyValue // sorted by key
	deletes [][]byte
	events  [][]byte
	meta    []byte
}

type keyValue struct{ k, v []byte }

func encodeCommit(c watcher.Commit) (*encodedCommit, error) {
	size := 16
	for _, r := range c.Put {
		size += len(r.InstanceID) + len(r.State) + 40
	}
	for _, e := range c.Events {
		size += len(e.ID) + len(e.Target.Account) + len(e.Target.Region) + len(e.InstanceID) + len(e.From) + len(e.To) + 40
		if e.Instance != nil {
			size += 256
		}
	}
	size += 320 * len(c.Enrich)
	buf := make([]byte, 0, size)
	puts := make([]span, len(c.Put))
	var err error
	for i, r := range c.Put {
		puts[i].k = len(buf)
		buf = append(buf, r.InstanceID...)
		puts[i].v = len(buf)
		if buf, err = appendRecord(buf, r); err != nil {
			return nil, fmt.Errorf("put %s: %w", watcher.Quote(r.InstanceID), err)
		}
		puts[i].end = len(buf)
	}
	events := make([]int, len(c.Events)+1)
	for i, e := range c.Events {
		events[i] = len(buf)
		if buf, err = appendEvent(buf, e); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
	}
	events[len(c.Events)] = len(buf)
	enrich := make([]span, len(c.Enrich))
	for i, e := range c.Enrich {
		enrich[i].k = len(buf)
		buf = append(buf, e.InstanceID...)
		enrich[i].v = len(buf)
		if buf, err = appendEnrichment(buf, e); err != nil {
			return nil, fmt.Errorf("enrichment %s: %w", watcher.Quote(e.InstanceID), err)
		}
		enrich[i].end = len(buf)
	}
	pending := make([]span, len(c.Pending))
	for i, p := range c.Pending {
		pending[i].k = len(buf)
		buf = append(buf, p.EventID...)
		pending[i].v = len(buf)
		if buf, err = appendPending(buf, p); err != nil {
			return nil, fmt.Errorf("pending attribution %s: %w", watcher.Quote(p.EventID), err)
		}
		pending[i].end = len(buf)
	}
	metaStart := len(buf)
	if buf, err = appendScanMeta(buf, c.Meta); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	// buf is complete and will not move again: slice it.
	ec := &encodedCommit{
		puts:    make([]keyValue, len(puts)),
		deletes: make([][]byte, len(c.Delete)),
		events:  make([][]byte, len(c.Events)),
		meta:    buf[metaStart:len(buf):len(buf)],
	}
	ec.puts, ec.enrich, ec.pending = spans(buf, puts), spans(buf, enrich), spans(buf, pending)
	for i := range c.Events {
		ec.events[i] = buf[events[i]:events[i+1]:events[i+1]]
	}
	for i, id := range c.Delete {
		ec.deletes[i] = []byte(id)
	}
	slices.SortFunc(ec.deletes, bytes.Compare)
	return ec, nil
}

// spans slices buf's key/value spans into key-sorted pairs.
func spans(buf []byte, sp []span) []keyValue {
	out := make([]keyValue, len(sp))
	for i, p := range sp {
		out[i] = keyValue{k: buf[p.k:p.v:p.v], v: buf[p.v:p.end:p.end]}
	}
	slices.SortStableFunc(out, func(a, b keyValue) int { return bytes.Compare(a.k, b.k) })
	return out
}

// span locates a key and its value in an encoding buffer.
type span struct{ k, v, end int }

// Commit applies c to target in one bbolt transaction, fsynced before it
// returns: records put and deleted, events appended to the outbox under the
// target's next sequences, scan metadata replaced. It writes only the keys
// c names; a commit with nothing but metadata rewrites no record or outbox
// page. It returns the sequences given to c.Events, or 0, 0 when c has no
// events. It refuses, changing nothing, a commit with an empty instance ID,
// an ID both put and deleted, or a time outside the storable range.
func (b *Bolt) Commit(ctx context.Context, target watcher.Target, c watcher.Commit) (first, last uint64, err error) {
	if err := b.acquire(); err != nil {
		return 0, 0, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	if err := validateCommit(c); err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	ec, err := encodeCommit(c)
	if err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	err = b.update(func(tx *bbolt.Tx) error {
		first, last = 0, 0
		tb, err := createTarget(tx, key)
		if err != nil {
			return err
		}
		tb.records.FillPercent = recordsFillPercent
		for _, p := range ec.puts {
			if err := tb.records.Put(p.k, p.v); err != nil {
				return fmt.Errorf("put %s: %w", watcher.Quote(string(p.k)), err)
			}
		}
		for _, k := range ec.deletes {
			if err := tb.records.Delete(k); err != nil {
				return fmt.Errorf("delete %s: %w", watcher.Quote(string(k)), err)
			}
			if tb.enrich != nil {
				if err := tb.enrich.Delete(k); err != nil {
					return fmt.Errorf("delete enrichment %s: %w", watcher.Quote(string(k)), err)
				}
			}
		}
		if err := tb.putEnrich(ec.enrich); err != nil {
			return err
		}
		if err := tb.putPending(ec.pending); err != nil {
			return err
		}
		if first, last, err = b.appendOutbox(tb, ec.events); err != nil {
			return err
		}
		return tb.meta.Put([]byte(keyScan), ec.meta)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("commit %s: %w", target, err)
	}
	return first, last, nil
}

// recordsFillPercent is how full bbolt packs record pages when it splits
// them. Records are mostly rewritten in place with values of the same size,
// so pages packed fuller than bbolt's default (0.5) rarely split again, and
// the file and a Load stay smaller.
const recordsFillPercent = 0.9

// Targets lists every committed target, sorted by account then region.
func (b *Bolt) Targets(ctx context.Context) ([]watcher.Target, error) {
	if err := b.acquire(); err != nil {
		return nil, err
	}
	defer b.release()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	var out []watcher.Target
	err := b.view(nil, func(tx *bbolt.Tx) error {
		root := tx.Bucket([]byte(bucketTargets))
		if root == nil {
			return fmt.Errorf("no %q bucket: %w", bucketTargets, ErrCorrupt)
		}
		c := root.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			t, err := parseTargetKey(k)
			if err != nil || v != nil {
				return fmt.Errorf("target key %s: not a target bucket: %w", watcher.Quote(string(k)), ErrCorrupt)
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: targets: %w", b.path, err)
	}
	return out, nil
}
