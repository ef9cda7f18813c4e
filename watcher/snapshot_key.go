package watcher

import "slices"

// The snapshot keeps the records of canonical instance IDs, "ins-" and 8
// characters of [0-9a-z] (the form of every ID the CVM API issues), under
// the ID packed into a uint64: the 8 characters read as a base-36 number.
// Packing is exact (unpackID(packID(id)) == id) and keeps the order of the
// IDs: for canonical a and b, a < b as strings if and only if packID(a) <
// packID(b). Any other ID is not packed: the snapshot keeps it as its
// string (see Snapshot.odd), so no ID is refused or changed.

const (
	idPrefix    = "ins-"
	idDigits    = "0123456789abcdefghijklmnopqrstuvwxyz"
	packedIDLen = len(idPrefix) + 8
)

// packID returns the packed form of a canonical ID, and false for any other.
func packID(id string) (uint64, bool) {
	if len(id) != packedIDLen || id[:len(idPrefix)] != idPrefix {
		return 0, false
	}
	var k uint64
	for i := len(idPrefix); i < packedIDLen; i++ {
		var d byte
		switch c := id[i]; {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'z':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		k = k*36 + uint64(d)
	}
	return k, true
}

// unpackID returns the ID packID packed into k.
func unpackID(k uint64) string {
	var b [packedIDLen]byte
	copy(b[:], idPrefix)
	for i := packedIDLen - 1; i >= len(idPrefix); i-- {
		b[i] = idDigits[k%36]
		k /= 36
	}
	return string(b[:])
}

// Settling: fresh is merged into keys when it holds freshShare-th of keys
// (and at least freshMin records), so a merge, which moves every record,
// is paid for by as many insertions; keys keeps 1/64 of spare capacity.
const (
	freshMin   = 1024
	freshShare = 256
)

// snapCursor finds records by ID. It looks first just after the record it
// found last, so a walk in sorted order (a scan's observations, a commit's
// records) takes O(1) per find, and any other order O(log n). A slot is a
// record's index in keys, or -1 for a record in fresh or odd. Valid until
// the snapshot is settled.
type snapCursor struct {
	s    *Snapshot
	next int
}

func (s *Snapshot) cursor() snapCursor { return snapCursor{s: s} }

// find returns the record of an ID, and its slot.
func (s *Snapshot) find(id string) (snapRecord, int, bool) {
	c := s.cursor()
	return c.find(id)
}

// find returns the record of an ID, and its slot.
func (c *snapCursor) find(id string) (snapRecord, int, bool) {
	s := c.s
	k, ok := packID(id)
	if !ok {
		r, ok := s.odd[id]
		return r, -1, ok
	}
	i := c.search(k)
	c.next = i
	if i < len(s.keys) && s.keys[i] == k && s.recs[i].state != deadIdx {
		c.next = i + 1
		return s.recs[i], i, true
	}
	if len(s.fresh) > 0 {
		if r, ok := s.fresh[k]; ok {
			return r, -1, true
		}
	}
	return snapRecord{}, -1, false
}

// search returns the index of k in keys, or where it would go: a gallop
// forward from next, or a binary search of what is before it.
func (c *snapCursor) search(k uint64) int {
	keys := c.s.keys
	lo := min(c.next, len(keys))
	if lo > 0 && keys[lo-1] >= k {
		i, _ := slices.BinarySearch(keys[:lo], k)
		return i
	}
	// Every key before lo is below k.
	hi, step := lo, 1
	for hi < len(keys) && keys[hi] < k {
		lo = hi + 1
		hi += step
		step *= 2
	}
	hi = min(hi, len(keys))
	i, _ := slices.BinarySearch(keys[lo:hi], k)
	return lo + i
}

// setAt writes the record of id at its slot (see snapCursor): slot -1
// adds it if it is new. A new canonical ID above every key is appended to
// keys; any other new one waits in fresh.
func (s *Snapshot) setAt(slot int, id string, r snapRecord) {
	k, ok := packID(id)
	switch {
	case slot >= 0:
		s.recs[slot] = r
	case !ok:
		s.odd[id] = r
	default:
		if _, in := s.fresh[k]; !in && (len(s.keys) == 0 || k > s.keys[len(s.keys)-1]) {
			s.keys = append(s.keys, k)
			s.recs = append(s.recs, r)
			return
		}
		s.fresh[k] = r
	}
}

// remove deletes the record of id at its slot. A record of keys is only
// marked: settle removes it.
func (s *Snapshot) remove(slot int, id string) {
	if slot >= 0 {
		s.recs[slot].state = deadIdx
		s.dead++
		return
	}
	if k, ok := packID(id); ok {
		delete(s.fresh, k)
	} else {
		delete(s.odd, id)
	}
}

// settle removes the records remove marked, merges fresh into keys when it
// has grown (see freshShare), and gives back the spare capacity append
// left. Every slot and cursor taken before it is invalid after it.
func (s *Snapshot) settle() {
	if s.dead > 0 {
		n := 0
		for i, r := range s.recs {
			if r.state != deadIdx {
				s.keys[n], s.recs[n] = s.keys[i], r
				n++
			}
		}
		s.keys, s.recs, s.dead = s.keys[:n], s.recs[:n], 0
	}
	if len(s.fresh) > 0 && len(s.fresh) >= max(freshMin, len(s.keys)/freshShare) {
		s.merge()
	}
	if cap(s.keys)-len(s.keys) > len(s.keys)/8+freshMin {
		s.resize(len(s.keys))
	}
}

// merge moves fresh into keys, from the back, in place when keys has the
// capacity.
func (s *Snapshot) merge() {
	add := make([]uint64, 0, len(s.fresh))
	for k := range s.fresh {
		add = append(add, k)
	}
	slices.Sort(add)
	n := len(s.keys)
	total := n + len(add)
	if cap(s.keys) < total {
		s.resize(total)
	}
	s.keys, s.recs = s.keys[:total], s.recs[:total]
	i, j := n-1, len(add)-1
	for w := total - 1; j >= 0; w-- {
		if i >= 0 && s.keys[i] > add[j] {
			s.keys[w], s.recs[w] = s.keys[i], s.recs[i]
			i--
		} else {
			s.keys[w], s.recs[w] = add[j], s.fresh[add[j]]
			j--
		}
	}
	s.fresh = map[uint64]snapRecord{} // not clear: a large map keeps its size
}

// resize moves keys and recs to arrays of capacity n and 1/64 to spare.
func (s *Snapshot) resize(n int) {
	n += n / 64
	keys, recs := make([]uint64, len(s.keys), n), make([]snapRecord, len(s.recs), n)
	copy(keys, s.keys)
	copy(recs, s.recs)
	s.keys, s.recs = keys, recs
}

// snapMarks is a set of a snapshot's records, as the diff marks those a
// scan listed: a bit per record of keys, the ID of any other. Valid until
// the snapshot is settled.
type snapMarks struct {
	bits []uint64
	ids  map[string]struct{}
}

func (s *Snapshot) marks() *snapMarks {
	return &snapMarks{bits: make([]uint64, (len(s.keys)+63)/64), ids: map[string]struct{}{}}
}

// mark adds the record of id at slot (see snapCursor).
func (m *snapMarks) mark(slot int, id string) {
	if slot >= 0 {
		m.bits[slot/64] |= 1 << (slot % 64)
	} else {
		m.ids[id] = struct{}{}
	}
}

func (m *snapMarks) has(slot int, id string) bool {
	if slot >= 0 {
		return m.bits[slot/64]&(1<<(slot%64)) != 0
	}
	_, ok := m.ids[id]
	return ok
}

// walk calls fn, in no particular order, with every record that want
// accepts (every one if want is nil) and skip (if not nil) has not marked.
// Only the IDs passed to fn are unpacked.
func (s *Snapshot) walk(skip *snapMarks, want func(snapRecord) bool, fn func(id string, r snapRecord)) {
	for i, r := range s.recs {
		if r.state == deadIdx || want != nil && !want(r) || skip != nil && skip.has(i, "") {
			continue
		}
		fn(unpackID(s.keys[i]), r)
	}
	for k, r := range s.fresh {
		if want != nil && !want(r) {
			continue
		}
		if id := unpackID(k); skip == nil || !skip.has(-1, id) {
			fn(id, r)
		}
	}
	for id, r := range s.odd {
		if want != nil && !want(r) || skip != nil && skip.has(-1, id) {
			continue
		}
		fn(id, r)
	}
}
