package oracle

import (
	"github.com/cvmwatch/cvmwatch/watcher"
)

// The two ways two writers of one target (a replica paused past its lease
// and its successor) could break a stream have names of their own, so
// that a report says which happened:
//
//   - "fork": one instance's sequence number carried by two different
//     events (different transitions, hence different ids): both writers
//     continued the chain from the same point. The chain check sees it too,
//     as a sequence that does not follow its predecessor; "fork" says why.
//   - "conflict": one event id stored with two different contents (see
//     decode): the same transition reported twice with different windows
//     or attributes.
//
// Report.Count says how many of each a stream holds.

// checkForks reports every sequence number of an instance that more than
// one of its distinct events carries; chains hold each instance's
// distinct events (by id) in stream order.
func checkForks(chains map[string][]watcher.Event, r *Report) {
	for _, key := range sortedKeys(chains) {
		first := map[uint64]watcher.Event{}
		for _, e := range chains[key] {
			p, ok := first[e.Sequence]
			if !ok {
				first[e.Sequence] = e
				continue
			}
			r.add("fork", key, "sequence %d carried by two events: %s (%s->%s) and %s (%s->%s)",
				e.Sequence, p.ID, p.From, p.To, e.ID, e.From, e.To)
		}
	}
}

// Count returns how many violations of kind r holds.
func (r Report) Count(kind string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Kind == kind {
			n++
		}
	}
	return n
}
