package lease

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"slices"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Assign maps every target to one of replicas: rendezvous hashing (each
// target goes to the replica ranking it highest) with bounded load, so no
// replica gets more than ceil(len(targets)/len(replicas)). It depends only
// on the two sets, not on their order, so replicas that see the same live
// set agree; a replica joining or leaving moves few targets. Duplicates are
// ignored. No replicas: an empty map.
func Assign(targets []watcher.Target, replicas []string) map[watcher.Target]string {
	replicas = slices.Compact(slices.Sorted(slices.Values(replicas)))
	out := make(map[watcher.Target]string, len(targets))
	if len(replicas) == 0 {
		return out
	}
	ts := slices.Clone(targets)
	slices.SortFunc(ts, func(a, b watcher.Target) int {
		return cmp.Or(cmp.Compare(score(a, ""), score(b, "")), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	ts = slices.Compact(ts)
	limit := (len(ts) + len(replicas) - 1) / len(replicas)
	load := make(map[string]int, len(replicas))
	ranked := slices.Clone(replicas)
	for _, t := range ts {
		slices.SortFunc(ranked, func(a, b string) int {
			return cmp.Or(cmp.Compare(score(t, b), score(t, a)), cmp.Compare(a, b))
		})
		for _, r := range ranked {
			if load[r] < limit {
				out[t] = r
				load[r]++
				break
			}
		}
	}
	return out
}

// score is the rendezvous weight of replica for t.
func score(t watcher.Target, replica string) uint64 {
	h := fnv.New64a()
	for _, s := range []string{t.Account, t.Region, replica} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	return h.Sum64()
}
