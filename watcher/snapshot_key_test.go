package watcher

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPackIDRoundTripsAndKeepsOrder(t *testing.T) {
	ids := []string{"ins-00000000", "ins-00000009", "ins-0000000a", "ins-0000000z", "ins-0a1b2c3d", "ins-9zzzzzzz", "ins-a0000000", "ins-zzzzzzzz"}
	var keys []uint64
	for _, id := range ids {
		k, ok := packID(id)
		if !ok {
			t.Fatalf("packID(%q) refused a canonical ID", id)
		}
		if got := unpackID(k); got != id {
			t.Fatalf("unpackID(packID(%q)) = %q", id, got)
		}
		keys = append(keys, k)
	}
	if !slices.IsSorted(ids) || !slices.IsSorted(keys) {
		t.Fatalf("packing changed the order of %q: %v", ids, keys)
	}
	for _, id := range []string{
		"", "ins-", "ins-0000000", "ins-000000000", "INS-00000000", "ins_00000000", "i-00000000",
		"ins-0000000A", "ins-0000000/", "ins-0000000:", "ins-0000000`", "ins-0000000{",
		"ins-0000000\x00", "ins-000000é", "ins-\xff\xff\xff\xff\xff\xff\xff\xff", " ins-0000000",
	} {
		if k, ok := packID(id); ok {
			t.Fatalf("packID(%q) = %d, want it refused", id, k)
		}
	}
}

// hostileIDs are valid IDs (any string the API could return) that the
// snapshot cannot pack, beside canonical ones that it can.
var hostileIDs = []string{
	"", "ins-", "ins-ABCDEFGH", "ins-0000000A", "ins-000000000", "ins-0000001", "i-00000001",
	"ins-é/\x00{}", "ins-\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "ins-00000001 ", "\x00", "ins-0000000\n",
}

// TestSnapshotKeepsEveryIDAndField puts records of canonical and hostile
// IDs, in no order, and reads every field back from the snapshot, from a
// snapshot reloaded from it, after deletes, and through a diff that must
// find the one instance a complete scan missed, whatever its ID.
func TestSnapshotKeepsEveryIDAndField(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ids := append(slices.Clone(hostileIDs), "ins-zzzzzzzz", "ins-00000000", "ins-0000000a", "ins-m0000000")
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	want := map[string]Record{}
	snap := NewSnapshot()
	for i, id := range ids {
		r := Record{
			InstanceID: id,
			State:      State(fmt.Sprintf("STATE-%d", i%5)),
			Sequence:   math.MaxUint64 - uint64(i),
			Since:      t0.Add(time.Duration(i)*time.Millisecond + 7*time.Millisecond),
			LastSeen:   t0.Add(-time.Duration(i) * time.Millisecond),
			Missing:    i % 3,
			Unread:     i%3 == 0 && i%2 == 0, // only with Missing 0, as the diff writes it
		}
		if i%5 == 0 {
			r.State = Absent
		}
		if r.Unread && r.Missing == 0 {
			r.LastSeen = t0.Add(time.Hour) // exact, never derived
		}
		want[id] = r
		snap.Apply(Commit{Put: []Record{r}, Meta: ScanMeta{Baselined: true}}, Scan{Complete: true})
	}
	check := func(what string, s *Snapshot) {
		t.Helper()
		if got, want := s.Len(), len(want); got != want {
			t.Fatalf("%s: Len = %d, want %d", what, got, want)
		}
		for id, w := range want {
			if got, ok := s.Get(id); !ok || got != w {
				t.Fatalf("%s: Get(%q) = %+v, %v; want %+v", what, id, got, ok, w)
			}
		}
		var walked []string
		s.walk(nil, nil, func(id string, _ snapRecord) { walked = append(walked, id) })
		slices.Sort(walked)
		if got, want := len(slices.Compact(slices.Clone(walked))), len(want); got != want || len(walked) != want {
			t.Fatalf("%s: walked %d distinct IDs of %d, want %d", what, got, len(walked), want)
		}
		for _, id := range walked {
			if _, ok := want[id]; !ok {
				t.Fatalf("%s: walked %q, which was never put", what, id)
			}
		}
	}
	check("after puts", snap)
	reloaded, err := LoadSnapshot(func(fn func(Record) error) (ScanMeta, error) {
		for _, id := range ids {
			if err := fn(want[id]); err != nil {
				return ScanMeta{}, err
			}
		}
		return snap.Meta(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check("reloaded", reloaded)

	var gone []string
	for _, id := range ids[:len(ids)/2] {
		gone = append(gone, id)
		delete(want, id)
	}
	snap.Apply(Commit{Delete: gone, Meta: snap.Meta()}, Scan{Complete: true})
	check("after deletes", snap)
	for _, id := range gone {
		if _, ok := snap.Get(id); ok {
			t.Fatalf("Get(%q) found a deleted record", id)
		}
	}

	// Each live instance in turn is the one a complete scan does not list.
	for id, w := range want {
		if w.State == Absent {
			continue
		}
		scan := Scan{Complete: true, Stats: ScanStats{Started: t0.Add(time.Minute)}}
		for other, r := range want {
			if other != id && r.State != Absent {
				scan.Observations = append(scan.Observations, Observation{InstanceID: other, State: r.State})
			}
		}
		slices.SortFunc(scan.Observations, func(a, b Observation) int { return cmpString(a.InstanceID, b.InstanceID) })
		p := DefaultPolicy()
		p.ConfirmScans = 1
		d := Diff(snap, scan, p)
		if got := d.Candidates(); !slices.Equal(got, []string{id}) {
			t.Fatalf("a scan without %q: candidates %q", id, got)
		}
	}
}

// TestSnapshotMatchesAMapThroughMerges drives a snapshot and a plain map
// through random commits of puts and deletes, in and out of order, large
// enough to append, fill fresh, merge, compact and resize, and compares
// them after every commit.
func TestSnapshotMatchesAMapThroughMerges(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	snap := NewSnapshot()
	model := map[string]Record{}
	idOf := func() string {
		if rng.IntN(50) == 0 {
			return hostileIDs[rng.IntN(len(hostileIDs))]
		}
		return unpackID(rng.Uint64N(20_000) * 7919 % 2_821_109_907_456) // 36^8
	}
	for step := range 200 {
		var c Commit
		c.Meta = ScanMeta{Baselined: true} // no LastComplete: every LastSeen is as put
		n := rng.IntN(300)
		if step%40 == 0 {
			n = 5000 // a bulk: fresh past its share
		}
		touched := map[string]bool{}
		for range n {
			id := idOf()
			if touched[id] {
				continue
			}
			touched[id] = true
			if _, ok := model[id]; ok && rng.IntN(4) == 0 {
				c.Delete = append(c.Delete, id)
				continue
			}
			st := []State{Absent, StateRunning, StateStopped, StatePending}[rng.IntN(4)]
			r := Record{InstanceID: id, State: st, Sequence: rng.Uint64(), Since: t0.Add(time.Duration(rng.IntN(1e6)) * time.Millisecond), LastSeen: t0.Add(-time.Duration(rng.IntN(1e6)) * time.Millisecond), Missing: rng.IntN(3)}
			r.Unread = r.Missing == 0 && rng.IntN(2) == 0
			c.Put = append(c.Put, r)
		}
		if rng.IntN(2) == 0 {
			slices.SortFunc(c.Put, func(a, b Record) int { return cmpString(a.InstanceID, b.InstanceID) })
		}
		snap.Apply(c, Scan{Complete: true})
		for _, r := range c.Put {
			model[r.InstanceID] = r
		}
		for _, id := range c.Delete {
			delete(model, id)
		}
		if got, want := snap.Len(), len(model); got != want {
			t.Fatalf("step %d: Len = %d, want %d", step, got, want)
		}
		if !slices.IsSorted(snap.keys) {
			t.Fatalf("step %d: keys out of order", step)
		}
		live := 0
		for id, w := range model {
			if w.State != Absent {
				live++
			}
			if got, ok := snap.Get(id); !ok || got != w {
				t.Fatalf("step %d: Get(%q) = %+v, %v; want %+v", step, id, got, ok, w)
			}
		}
		if snap.live != live || snap.tombstones != len(model)-live {
			t.Fatalf("step %d: %d live and %d tombstones, want %d and %d", step, snap.live, snap.tombstones, live, len(model)-live)
		}
	}
	if len(snap.keys) < freshMin {
		t.Fatalf("only %d records merged into keys: the test did not reach a merge", len(snap.keys))
	}
}
