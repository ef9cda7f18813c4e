package watcher

import (
	"sync"
	"time"
)

// Snapshot is the in-memory view of one target's records, kept by the loop
// between scans so a scan is diffed without reading the store. It advances
// only after the store committed (Apply), so a failed commit leaves it as it
// was. Not safe for concurrent use.
//
// Records are kept compact (about 100 bytes per instance in a large target):
// times as unix milliseconds, states interned.
type Snapshot struct {
	records map[string]snapRecord
	meta    ScanMeta
	states  *stateTable
}

type snapRecord struct {
	state    State // interned: all records in a state share one string
	seq      uint64
	since    int64 // unix ms
	lastSeen int64 // unix ms
	missing  int32
}

// NewSnapshot returns an empty snapshot: a target never scanned.
func NewSnapshot() *Snapshot {
	return &Snapshot{records: map[string]snapRecord{}, states: newStateTable()}
}

// LoadSnapshot builds a snapshot from a store's Load walk. A record not
// missing from the last complete scan was listed by it, so its last-seen time
// is at least that scan's start even though LastSeen is only written with
// other changes.
func LoadSnapshot(load func(fn func(Record) error) (ScanMeta, error)) (*Snapshot, error) {
	s := NewSnapshot()
	meta, err := load(func(r Record) error {
		s.put(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.meta = meta
	lc := toMillis(meta.LastComplete)
	for id, r := range s.records {
		if r.state != Absent && r.missing == 0 && lc > r.lastSeen {
			r.lastSeen = lc
			s.records[id] = r
		}
	}
	return s, nil
}

// Meta returns the target's scan metadata as last committed.
func (s *Snapshot) Meta() ScanMeta { return s.meta }

// Len counts the records, tombstones included.
func (s *Snapshot) Len() int { return len(s.records) }

// Get returns the record of an instance.
func (s *Snapshot) Get(id string) (Record, bool) {
	r, ok := s.records[id]
	if !ok {
		return Record{}, false
	}
	return r.record(id), true
}

// CountByState counts live instances (tombstones excluded) per state.
func (s *Snapshot) CountByState() map[State]int {
	out := map[State]int{}
	for _, r := range s.records {
		if r.state != Absent {
			out[r.state]++
		}
	}
	return out
}

// Apply advances the snapshot by a commit the store has made durable, and
// notes that every instance the scan listed was seen at the scan's start.
func (s *Snapshot) Apply(c Commit, scan Scan) {
	for _, r := range c.Put {
		s.put(r)
	}
	for _, id := range c.Delete {
		delete(s.records, id)
	}
	s.meta = c.Meta
	seen := toMillis(scan.Stats.Started)
	for _, o := range scan.Observations {
		if r, ok := s.records[o.InstanceID]; ok && r.state == o.State && r.lastSeen < seen {
			r.lastSeen = seen
			s.records[o.InstanceID] = r
		}
	}
}

func (s *Snapshot) put(r Record) {
	s.records[r.InstanceID] = snapRecord{
		state:    s.states.intern(r.State),
		seq:      r.Sequence,
		since:    toMillis(r.Since),
		lastSeen: toMillis(r.LastSeen),
		missing:  int32(r.Missing),
	}
}

func (r snapRecord) record(id string) Record {
	return Record{
		InstanceID: id,
		State:      r.state,
		Sequence:   r.seq,
		Since:      fromMillis(r.since),
		LastSeen:   fromMillis(r.lastSeen),
		Missing:    int(r.missing),
	}
}

// stateTable interns state strings so a million records share a handful.
type stateTable struct {
	mu sync.Mutex
	m  map[State]State
}

func newStateTable() *stateTable { return &stateTable{m: map[State]State{}} }

func (t *stateTable) intern(s State) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.m[s]; ok {
		return v
	}
	t.m[s] = s
	return s
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
