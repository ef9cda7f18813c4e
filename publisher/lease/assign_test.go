package lease

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func targets(n int) []watcher.Target {
	ts := make([]watcher.Target, n)
	for i := range ts {
		ts[i] = watcher.Target{Account: fmt.Sprintf("acct%d", i%4), Region: fmt.Sprintf("region-%d", i)}
	}
	return ts
}

func replicaIDs(n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("replica-%d", i)
	}
	return rs
}

func TestAssignIsBalancedAndTotal(t *testing.T) {
	for nt := 0; nt <= 40; nt += 3 {
		for nr := 1; nr <= 6; nr++ {
			ts, rs := targets(nt), replicaIDs(nr)
			got := Assign(ts, rs)
			if len(got) != nt {
				t.Fatalf("%d targets, %d replicas: %d assigned", nt, nr, len(got))
			}
			load := map[string]int{}
			for _, r := range got {
				load[r]++
			}
			limit := (nt + nr - 1) / nr
			for r, n := range load {
				if n > limit {
					t.Fatalf("%d targets, %d replicas: %s holds %d, more than %d", nt, nr, r, n, limit)
				}
			}
		}
	}
}

func TestAssignIgnoresOrder(t *testing.T) {
	ts, rs := targets(17), replicaIDs(4)
	want := Assign(ts, rs)
	for range 20 {
		rand.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		rand.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		if got := Assign(ts, append(rs, rs[0])); !maps.Equal(got, want) {
			t.Fatalf("Assign depends on order: %v, want %v", got, want)
		}
	}
}

// A replica leaving moves its own targets and, to keep the bound, few
// others.
func TestAssignMovesFewTargetsWhenAReplicaLeaves(t *testing.T) {
	ts, rs := targets(30), replicaIDs(3)
	before := Assign(ts, rs)
	after := Assign(ts, rs[1:])
	moved := 0
	for _, tg := range ts {
		if before[tg] != rs[0] && before[tg] != after[tg] {
			moved++
		}
	}
	if moved > len(ts)/3 {
		t.Fatalf("%d targets of surviving replicas moved, want at most %d", moved, len(ts)/3)
	}
	if slices.Contains(slices.Collect(maps.Values(after)), rs[0]) {
		t.Fatal("a target is still assigned to the replica that left")
	}
}
