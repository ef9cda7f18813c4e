package store

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// encVersion is the leading byte of every encoded value.
const encVersion = 1

// Flags of an encoded record.
const (
	recSince    = 1 << 0
	recLastSeen = 1 << 1
	recUnread   = 1 << 2
	recAllFlags = recSince | recLastSeen | recUnread
)

// Flags of encoded scan metadata.
const (
	metaBaselined    = 1 << 0
	metaLastScan     = 1 << 1
	metaLastComplete = 1 << 2
	metaAllFlags     = metaBaselined | metaLastScan | metaLastComplete
)

// Flags of an encoded outbox event.
const (
	evObservedAt     = 1 << 0
	evPrevObservedAt = 1 << 1
	evInstance       = 1 << 2
	evOperation      = 1 << 3
	evTruncated      = 1 << 4 // Instance.Truncated
	evActor          = 1 << 5
	evCompletes      = 1 << 6 // a follow-up (watcher.TypeAttributed)
	evAllFlags       = evObservedAt | evPrevObservedAt | evInstance | evOperation | evTruncated | evActor | evCompletes
)

// checkTime reports whether t can be stored: the zero time, or a time whose
// Unix nanoseconds fit an int64 (years 1678 to 2262).
func checkTime(t time.Time) error {
	if t.IsZero() || time.Unix(0, t.UnixNano()).Equal(t) {
		return nil
	}
	return fmt.Errorf("time %s outside the storable range (years 1678 to 2262)", t.UTC().Format(time.RFC3339Nano))
}

func timeFlag(t time.Time, flag byte) byte {
	if t.IsZero() {
		return 0
	}
	return flag
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendRecord appends the value encoding of r (its InstanceID is the key
// and not part of the value).
func appendRecord(dst []byte, r watcher.Record) ([]byte, error) {
	if err := checkTime(r.Since); err != nil {
		return dst, fmt.Errorf("since: %w", err)
	}
	if err := checkTime(r.LastSeen); err != nil {
		return dst, fmt.Errorf("last seen: %w", err)
	}
	flags := timeFlag(r.Since, recSince) | timeFlag(r.LastSeen, recLastSeen)
	if r.Unread {
		flags |= recUnread
	}
	dst = append(dst, encVersion, flags)
	dst = appendString(dst, string(r.State))
	dst = binary.AppendUvarint(dst, r.Sequence)
	if flags&recSince != 0 {
		dst = binary.AppendVarint(dst, r.Since.UnixNano())
	}
	if flags&recLastSeen != 0 {
		dst = binary.AppendVarint(dst, r.LastSeen.UnixNano())
	}
	return binary.AppendVarint(dst, int64(r.Missing)), nil
}

// decodeRecord decodes a record stored under key. States are interned in in
// when in is not nil.
func decodeRecord(key, val []byte, in *interner) (watcher.Record, error) {
	if len(key) == 0 {
		return watcher.Record{}, fmt.Errorf("record: empty key")
	}
	d := decoder{what: "record", b: val}
	flags := d.header(recAllFlags)
	r := watcher.Record{InstanceID: string(key)}
	r.State = watcher.State(d.str("state", in))
	r.Sequence = d.uvarint("sequence")
	if flags&recSince != 0 {
		r.Since = d.time("since")
	}
	if flags&recLastSeen != 0 {
		r.LastSeen = d.time("last seen")
	}
	m := d.varint("missing")
	if int64(int(m)) != m {
		d.fail("missing %d out of range", m)
	}
	r.Missing = int(m)
	r.Unread = flags&recUnread != 0
	if err := d.finish(); err != nil {
		return watcher.Record{}, err
	}
	return r, nil
}

// appendScanMeta appends the encoding of m.
func appendScanMeta(dst []byte, m watcher.ScanMeta) ([]byte, error) {
	if err := checkTime(m.LastScan); err != nil {
		return dst, fmt.Errorf("last scan: %w", err)
	}
	if err := checkTime(m.LastComplete); err != nil {
		return dst, fmt.Errorf("last complete: %w", err)
	}
	flags := timeFlag(m.LastScan, metaLastScan) | timeFlag(m.LastComplete, metaLastComplete)
	if m.Baselined {
		flags |= metaBaselined
	}
	dst = append(dst, encVersion, flags)
	if flags&metaLastScan != 0 {
		dst = binary.AppendVarint(dst, m.LastScan.UnixNano())
	}
	if flags&metaLastComplete != 0 {
		dst = binary.AppendVarint(dst, m.LastComplete.UnixNano())
	}
	dst = binary.AppendUvarint(dst, m.Scans)
	return binary.AppendUvarint(dst, m.CompleteScans), nil
}

// decodeScanMeta decodes scan metadata.
func decodeScanMeta(val []byte) (watcher.ScanMeta, error) {
	d := decoder{what: "scan meta", b: val}
	flags := d.header(metaAllFlags)
	m := watcher.ScanMeta{Baselined: flags&metaBaselined != 0}
	if flags&metaLastScan != 0 {
		m.LastScan = d.time("last scan")
	}
	if flags&metaLastComplete != 0 {
		m.LastComplete = d.time("last complete")
	}
	m.Scans = d.uvarint("scans")
	m.CompleteScans = d.uvarint("complete scans")
	if err := d.finish(); err != nil {
		return watcher.ScanMeta{}, err
	}
	return m, nil
}

// appendEvent appends the value encoding of an outbox entry's event (its
// Seq is the key and not part of the value).
func appendEvent(dst []byte, e watcher.Event) ([]byte, error) {
	if err := checkTime(e.ObservedAt); err != nil {
		return dst, fmt.Errorf("observed at: %w", err)
	}
	if err := checkTime(e.PreviousObservedAt); err != nil {
		return dst, fmt.Errorf("previous observed at: %w", err)
	}
	flags := timeFlag(e.ObservedAt, evObservedAt) | timeFlag(e.PreviousObservedAt, evPrevObservedAt)
	if e.Instance != nil {
		flags |= evInstance
		if e.Instance.Truncated {
			flags |= evTruncated
		}
	}
	if e.Operation != nil {
		flags |= evOperation
	}
	if e.Actor != nil {
		flags |= evActor
	}
	if e.Completes != "" {
		flags |= evCompletes
	}
	dst = append(dst, encVersion, flags)
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.Target.Account)
	dst = appendString(dst, e.Target.Region)
	dst = appendString(dst, e.InstanceID)
	dst = appendString(dst, string(e.From))
	dst = appendString(dst, string(e.To))
	dst = binary.AppendUvarint(dst, e.Sequence)
	if flags&evObservedAt != 0 {
		dst = binary.AppendVarint(dst, e.ObservedAt.UnixNano())
	}
	if flags&evPrevObservedAt != 0 {
		dst = binary.AppendVarint(dst, e.PreviousObservedAt.UnixNano())
	}
	if e.Instance != nil {
		dst = appendInstance(dst, e.Instance)
	}
	if e.Operation != nil {
		dst = appendOperation(dst, e.Operation)
	}
	if e.Actor != nil {
		dst = appendActor(dst, e.Actor)
	}
	if e.Completes != "" {
		dst = appendString(dst, e.Completes)
	}
	return dst, nil
}

// decodeOutboxEntry decodes the outbox entry stored under key.
func decodeOutboxEntry(key, val []byte) (watcher.OutboxEntry, error) {
	seq, err := parseSeqKey(key)
	if err != nil {
		return watcher.OutboxEntry{}, err
	}
	// One string holds every string field: the relay decodes each entry it
	// publishes, and they all go together.
	d := decoder{what: "outbox entry", b: val, src: string(val)}
	flags := d.header(evAllFlags)
	var e watcher.Event
	e.ID = d.str("id", nil)
	e.Target.Account = d.str("account", nil)
	e.Target.Region = d.str("region", nil)
	e.InstanceID = d.str("instance id", nil)
	e.From = watcher.State(d.str("from", nil))
	e.To = watcher.State(d.str("to", nil))
	e.Sequence = d.uvarint("sequence")
	if flags&evObservedAt != 0 {
		e.ObservedAt = d.time("observed at")
	}
	if flags&evPrevObservedAt != 0 {
		e.PreviousObservedAt = d.time("previous observed at")
	}
	switch {
	case flags&evInstance != 0:
		in := d.instance()
		in.Truncated = flags&evTruncated != 0
		e.Instance = &in
	case flags&evTruncated != 0:
		d.fail("truncated flag without an instance")
	}
	if flags&evOperation != 0 {
		op := d.operation()
		e.Operation = &op
	}
	if flags&evActor != 0 {
		a := d.actor()
		e.Actor = &a
	}
	if flags&evCompletes != 0 {
		if e.Completes = d.str("completes", nil); e.Completes == "" {
			d.fail("completes flag with an empty event id")
		}
	}
	if err := d.finish(); err != nil {
		return watcher.OutboxEntry{}, err
	}
	return watcher.OutboxEntry{Seq: seq, Event: e}, nil
}

// decoder reads one encoded value. The first problem sticks: later reads
// return zero values, and finish reports it. It never panics, whatever the
// bytes.
type decoder struct {
	what string
	b    []byte
	off  int
	err  error
	// src, when set, is the whole value as a string: str returns slices of
	// it instead of allocating a string per field.
	src string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: at byte %d: %s", d.what, d.off, fmt.Sprintf(format, args...))
	}
}

// header reads the version and flags bytes and checks that flags holds no
// bit outside known.
func (d *decoder) header(known byte) byte {
	if len(d.b) < 2 {
		d.fail("%d bytes, too short for a header", len(d.b))
		return 0
	}
	if v := d.b[0]; v != encVersion {
		d.fail("unsupported encoding version %d", v)
		return 0
	}
	flags := d.b[1]
	if flags&^known != 0 {
		d.fail("unknown flags %#x", flags&^known)
		return 0
	}
	d.b, d.off = d.b[2:], d.off+2
	return flags
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// raw reads a minimally encoded uvarint.
func (d *decoder) raw(field string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("%s: truncated varint", field)
		return 0
	case n < 0:
		d.fail("%s: varint overflows 64 bits", field)
		return 0
	case n != uvarintLen(x):
		d.fail("%s: varint not minimally encoded", field)
		return 0
	}
	d.b, d.off = d.b[n:], d.off+n
	return x
}

func (d *decoder) uvarint(field string) uint64 { return d.raw(field) }

func (d *decoder) varint(field string) int64 {
	ux := d.raw(field)
	x := int64(ux >> 1) // the zig-zag decoding of binary.Varint
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) time(field string) time.Time {
	ns := d.varint(field)
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *decoder) str(field string, in *interner) string {
	n := d.raw(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("%s: length %d, only %d bytes left", field, n, len(d.b))
		return ""
	}
	var s string
	if d.src != "" {
		s = d.src[d.off : d.off+int(n)]
	} else {
		s = in.str(d.b[:n])
	}
	d.b, d.off = d.b[n:], d.off+int(n)
	return s
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// interner shares the strings of a small set of values (instance states)
// across the records of one Load, so that a million records in a handful of
// states do not allocate a million state strings.
type interner struct {
	m map[string]string
}

func newInterner() *interner { return &interner{m: make(map[string]string)} }

// str returns b as a string, shared with earlier calls for the same bytes
// when the table has room. A nil interner just copies.
func (in *interner) str(b []byte) string {
	const maxLen, maxEntries = 64, 256
	if in == nil || len(b) > maxLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.m) < maxEntries {
		in.m[s] = s
	}
	return s
}
