package jsstore

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// Journal operations (see the package documentation).
const (
	opReset  = 'z'
	opPut    = 'r'
	opDelete = 'd'
	opEnrich = 'n'
	opEvent  = 'e'
	opAck    = 'a'
	opNext   = 'x'
	opMeta   = 'm'
	// opPending records a pending attribution (event id, value);
	// opResolved removes one (event id).
	opPending  = 'p'
	opResolved = 'q'
)

// view is one target's state as its journal holds it, values kept encoded
// (about 60 bytes per record). It is what the store answers from between
// two reads of the journal.
type view struct {
	records map[string][]byte
	enrich  map[string][]byte
	pending map[string][]byte // pending attributions by event id
	outbox  []entry           // ascending Seq
	next    uint64
	meta    watcher.ScanMeta
	metaSet bool // a meta op was applied: the target was committed
}

type entry struct {
	seq uint64
	ev  []byte
}

func newView() *view {
	return &view{records: map[string][]byte{}, enrich: map[string][]byte{}, pending: map[string][]byte{}, next: 1}
}

// empty reports whether the target has nothing at all.
func (v *view) empty() bool {
	return !v.metaSet && len(v.records) == 0 && len(v.enrich) == 0 && len(v.pending) == 0 && len(v.outbox) == 0 && v.next == 1
}

// appendStr appends a uvarint length and b.
func appendStr(dst []byte, b string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// encodeCommit returns the journal body of c, its outbox entries numbered
// from next on, and checks c as the other stores do.
func encodeCommit(c watcher.Commit, next uint64) ([]byte, error) {
	if err := store.ValidateCommit(c); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	for _, r := range c.Put {
		b = append(b, opPut)
		b = appendStr(b, r.InstanceID)
		var val []byte
		if val, err = store.AppendRecord(nil, r); err != nil {
			return nil, fmt.Errorf("put %s: %w", watcher.Quote(r.InstanceID), err)
		}
		b = appendStr(b, string(val))
	}
	for _, id := range c.Delete {
		b = appendStr(append(b, opDelete), id)
	}
	if b, err = appendEnrich(b, c.Enrich); err != nil {
		return nil, err
	}
	for _, p := range c.Pending {
		val, err := store.AppendPending(nil, p)
		if err != nil {
			return nil, fmt.Errorf("pending attribution %s: %w", watcher.Quote(p.EventID), err)
		}
		b = appendStr(appendStr(append(b, opPending), p.EventID), string(val))
	}
	for i, e := range c.Events {
		b = binary.AppendUvarint(append(b, opEvent), next+uint64(i))
		val, err := store.AppendEvent(nil, e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		b = appendStr(b, string(val))
	}
	b = binary.AppendUvarint(append(b, opNext), next+uint64(len(c.Events)))
	meta, err := store.AppendScanMeta(nil, c.Meta)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	return appendStr(append(b, opMeta), string(meta)), nil
}

func appendEnrich(b []byte, es []watcher.Enrichment) ([]byte, error) {
	for _, e := range es {
		val, err := store.AppendEnrichment(nil, e)
		if err != nil {
			return nil, fmt.Errorf("enrichment %s: %w", watcher.Quote(e.InstanceID), err)
		}
		b = appendStr(appendStr(append(b, opEnrich), e.InstanceID), string(val))
	}
	return b, nil
}

// encodeSnapshot returns a journal body that resets a reader's view to v.
func (v *view) encodeSnapshot() []byte {
	b := []byte{opReset}
	for _, id := range slices.Sorted(mapsKeys(v.records)) {
		b = appendStr(appendStr(append(b, opPut), id), string(v.records[id]))
	}
	for _, id := range slices.Sorted(mapsKeys(v.enrich)) {
		b = appendStr(appendStr(append(b, opEnrich), id), string(v.enrich[id]))
	}
	for _, id := range slices.Sorted(mapsKeys(v.pending)) {
		b = appendStr(appendStr(append(b, opPending), id), string(v.pending[id]))
	}
	for _, e := range v.outbox {
		b = appendStr(binary.AppendUvarint(append(b, opEvent), e.seq), string(e.ev))
	}
	b = binary.AppendUvarint(append(b, opNext), v.next)
	if v.metaSet {
		meta, _ := store.AppendScanMeta(nil, v.meta) // decoded from the same encoding
		b = appendStr(append(b, opMeta), string(meta))
	}
	return b
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// apply applies a journal body to v. Values are checked as they are
// applied, so a view never holds a value that does not decode; an error
// leaves v partly changed (the caller drops it).
func (v *view) apply(body []byte) error {
	r := reader{b: body}
	for r.err == nil && r.off < len(r.b) {
		op := r.b[r.off]
		r.off++
		switch op {
		case opReset:
			*v = *newView()
		case opPut:
			id, val := r.str(), r.bytes()
			if _, err := store.DecodeRecord(id, val); r.err == nil && err != nil {
				return fmt.Errorf("%w: record %s: %v", ErrCorrupt, watcher.Quote(id), err)
			}
			v.records[id] = val
		case opDelete:
			id := r.str()
			delete(v.records, id)
			delete(v.enrich, id)
		case opEnrich:
			id, val := r.str(), r.bytes()
			if _, err := store.DecodeEnrichment(id, val); r.err == nil && err != nil {
				return fmt.Errorf("%w: enrichment %s: %v", ErrCorrupt, watcher.Quote(id), err)
			}
			v.enrich[id] = val
		case opPending:
			id, val := r.str(), r.bytes()
			if _, err := store.DecodePending(id, val); r.err == nil && err != nil {
				return fmt.Errorf("%w: pending attribution %s: %v", ErrCorrupt, watcher.Quote(id), err)
			}
			v.pending[id] = val
		case opResolved:
			delete(v.pending, r.str())
		case opEvent:
			seq, val := r.uvarint(), r.bytes()
			if _, err := store.DecodeEvent(val); r.err == nil && err != nil {
				return fmt.Errorf("%w: outbox entry %d: %v", ErrCorrupt, seq, err)
			}
			if n := len(v.outbox); r.err == nil && n > 0 && v.outbox[n-1].seq >= seq {
				return fmt.Errorf("%w: outbox entry %d after %d", ErrCorrupt, seq, v.outbox[n-1].seq)
			}
			v.outbox = append(v.outbox, entry{seq: seq, ev: val})
		case opAck:
			upTo := r.uvarint()
			i := sort.Search(len(v.outbox), func(i int) bool { return v.outbox[i].seq > upTo })
			v.outbox = slices.Delete(v.outbox, 0, i)
		case opNext:
			v.next = r.uvarint()
		case opMeta:
			m, err := store.DecodeScanMeta(r.bytes())
			if r.err == nil && err != nil {
				return fmt.Errorf("%w: meta: %v", ErrCorrupt, err)
			}
			v.meta, v.metaSet = m, true
		default:
			return fmt.Errorf("%w: unknown operation %#x at byte %d", ErrCorrupt, op, r.off-1)
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	return nil
}

// records returns v's records, decoded, in instance ID order.
func (v *view) sortedRecords() ([]watcher.Record, error) {
	out := make([]watcher.Record, 0, len(v.records))
	for id, val := range v.records {
		r, err := store.DecodeRecord(id, val)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b watcher.Record) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	return out, nil
}

// oldest returns the ObservedAt of the first outbox entry.
func (v *view) oldest() (time.Time, error) {
	if len(v.outbox) == 0 {
		return time.Time{}, nil
	}
	e, err := store.DecodeEvent(v.outbox[0].ev)
	return e.ObservedAt, err
}

// reader reads a journal body; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = fmt.Errorf("bad varint at byte %d", r.off)
		return 0
	}
	r.off += n
	return x
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("field of %d bytes at byte %d overruns the body", n, r.off)
		return nil
	}
	b := slices.Clone(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return b
}

func (r *reader) str() string { return string(r.bytes()) }
