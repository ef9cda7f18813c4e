package watcher

import "time"

// Snapshot is the in-memory view of one target's records, kept by the loop
// between scans so a scan is diffed without reading the store. It advances
// only after the store committed (Apply), so a failed commit leaves it as it
// was. Not safe for concurrent use.
//
// Records are kept compact (see docs/BENCHMARKS.md for the heap per
// instance): times as unix milliseconds, states numbered, and the records
// of canonical IDs (see packID) in two parallel sorted slices under their
// packed ID, with no map entry and no string per instance. Every field of
// a Record and every ID is kept exactly: a non-canonical ID keeps its
// string in a map of its own.
type Snapshot struct {
	// keys holds, sorted, the packed IDs of the records of canonical IDs,
	// and recs their records at the same index.
	keys []uint64
	recs []snapRecord
	// fresh holds the records of canonical IDs added out of order since
	// the last merge into keys (see settle); odd holds the records of every
	// other ID. An ID is in exactly one of keys, fresh and odd.
	fresh map[uint64]snapRecord
	odd   map[string]snapRecord
	// dead counts the records of keys that Apply deleted and settle has
	// not removed yet (their state is deadIdx).
	dead   int
	meta   ScanMeta
	states stateTable
	// live and tombstones count the records by kind, so a scan that lists
	// every live instance needs no walk of the whole snapshot.
	live, tombstones int
	// moving holds the live instances in a transitional state: the hot set.
	moving map[string]struct{}
}

// snapRecord is 32 bytes: the state is an index into the snapshot's state
// table, times are unix milliseconds.
type snapRecord struct {
	seq      uint64
	since    int64
	lastSeen int64
	state    uint32 // index into Snapshot.states; 0 is Absent
	missing  int32  // Record.Missing; -1: Missing 0 and Record.Unread
}

const (
	// absentIdx is Absent's index in every state table.
	absentIdx = 0
	// deadIdx marks, only inside Apply, a record of keys that was deleted.
	deadIdx = ^uint32(0)
)

// NewSnapshot returns an empty snapshot: a target never scanned.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		fresh:  map[uint64]snapRecord{},
		odd:    map[string]snapRecord{},
		states: newStateTable(),
		moving: map[string]struct{}{},
	}
}

// stateOf returns a record's state.
func (s *Snapshot) stateOf(r snapRecord) State {
	return s.states.names[r.state]
}

// LoadSnapshot builds a snapshot from a store's Load walk.
func LoadSnapshot(load func(fn func(Record) error) (ScanMeta, error)) (*Snapshot, error) {
	s := NewSnapshot()
	cur := s.cursor()
	meta, err := load(func(r Record) error {
		s.put(&cur, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.settle()
	s.meta = meta
	return s, nil
}

// Meta returns the target's scan metadata as last committed.
func (s *Snapshot) Meta() ScanMeta { return s.meta }

// Len counts the records, tombstones included.
func (s *Snapshot) Len() int { return len(s.keys) - s.dead + len(s.fresh) + len(s.odd) }

// Get returns the record of an instance.
func (s *Snapshot) Get(id string) (Record, bool) {
	r, _, ok := s.find(id)
	if !ok {
		return Record{}, false
	}
	return s.record(id, r), true
}

// record expands a compact record. LastSeen is written only with other
// changes, so it is derived: a live record not missing from the last
// complete scan was listed by it, and so was seen at least at its start.
func (s *Snapshot) record(id string, r snapRecord) Record {
	seen := r.lastSeen
	if lc := toMillis(s.meta.LastComplete); r.state != absentIdx && r.missing == 0 && lc > seen {
		seen = lc
	}
	return Record{
		InstanceID: id,
		State:      s.stateOf(r),
		Sequence:   r.seq,
		Since:      fromMillis(r.since),
		LastSeen:   fromMillis(seen),
		Missing:    int(max(r.missing, 0)),
		Unread:     r.missing < 0,
	}
}

// InMotion returns, sorted, the live instances whose state is
// transitional (see State.Transitional): the target's hot set.
func (s *Snapshot) InMotion() []string {
	return sortedKeys(s.moving)
}

// CountByState counts live instances (tombstones excluded) per state.
func (s *Snapshot) CountByState() map[State]int {
	byIdx := make([]int, len(s.states.names))
	for _, r := range s.recs {
		byIdx[r.state]++
	}
	for _, r := range s.fresh {
		byIdx[r.state]++
	}
	for _, r := range s.odd {
		byIdx[r.state]++
	}
	out := map[State]int{}
	for i, n := range byIdx {
		if i != absentIdx && n > 0 {
			out[s.states.names[i]] = n
		}
	}
	return out
}

// Apply advances the snapshot by a commit the store has made durable, and
// notes that every instance the scan listed was seen at the scan's start.
// For a complete scan that is implied by the new metadata (see record), so
// only an incomplete scan's observations, and the IDs a complete scan
// listed without a usable state (which were not seen in their state), are
// written one by one.
func (s *Snapshot) Apply(c Commit, scan Scan) {
	cur := s.cursor()
	for _, id := range scan.Unreadable {
		if r, slot, ok := cur.find(id); ok {
			r.lastSeen = toMillis(s.record(id, r).LastSeen) // pin before LastComplete moves
			s.setAt(slot, id, r)
		}
	}
	cur = s.cursor()
	for _, r := range c.Put {
		s.put(&cur, r)
	}
	cur = s.cursor()
	for _, id := range c.Delete {
		if r, slot, ok := cur.find(id); ok {
			s.count(r, -1)
			s.remove(slot, id)
			delete(s.moving, id)
		}
	}
	s.settle()
	s.meta = c.Meta
	if scan.Complete {
		return
	}
	seen := toMillis(scan.Stats.Started)
	cur = s.cursor()
	for _, o := range scan.Observations {
		if r, slot, ok := cur.find(o.InstanceID); ok && s.stateOf(r) == o.State && r.lastSeen < seen {
			r.lastSeen = seen
			s.setAt(slot, o.InstanceID, r)
		}
	}
}

func (s *Snapshot) count(r snapRecord, delta int) {
	if r.state == absentIdx {
		s.tombstones += delta
	} else {
		s.live += delta
	}
}

func (s *Snapshot) put(cur *snapCursor, r Record) {
	old, slot, ok := cur.find(r.InstanceID)
	if ok {
		s.count(old, -1)
	}
	nr := snapRecord{
		state:    s.states.intern(r.State),
		seq:      r.Sequence,
		since:    toMillis(r.Since),
		lastSeen: toMillis(r.LastSeen),
		missing:  int32(r.Missing),
	}
	if r.Unread && r.Missing == 0 {
		nr.missing = -1 // LastSeen is exact: never derived
	}
	s.count(nr, 1)
	s.setAt(slot, r.InstanceID, nr)
	if r.State.Transitional() {
		s.moving[r.InstanceID] = struct{}{}
	} else {
		delete(s.moving, r.InstanceID)
	}
}

// stateTable numbers the states seen, so a record holds 4 bytes, not a
// string header.
type stateTable struct {
	names []State
	index map[State]uint32
}

func newStateTable() stateTable {
	return stateTable{names: []State{Absent}, index: map[State]uint32{Absent: absentIdx}}
}

func (t *stateTable) intern(s State) uint32 {
	if i, ok := t.index[s]; ok {
		return i
	}
	i := uint32(len(t.names))
	t.names = append(t.names, s)
	t.index[s] = i
	return i
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
