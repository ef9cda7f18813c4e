package cvmsim

import (
	"math/rand/v2"
	"testing"
)

// TestPickStableIsUniformOverTheStableOnly: sampling picks only stable
// instances with nothing planned, each about as often, and nil when there
// is none (also when sampling alone would not find the rare one).
func TestPickStableIsUniformOverTheStableOnly(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var list []*instance
	for i := range 12 {
		in := &instance{id: string(rune('a' + i)), state: StatePending}
		switch i % 4 {
		case 0:
			in.state = StateRunning
		case 1:
			in.state = StateStopped
		case 2:
			in.state = StateRunning
			in.plan = []step{{}} // in an operation
		}
		list = append(list, in)
	}
	counts := map[string]int{}
	const n = 6000
	for range n {
		in := pickStable(r, list)
		if in == nil || len(in.plan) > 0 || (in.state != StateRunning && in.state != StateStopped) {
			t.Fatalf("picked %+v, want a stable instance with nothing planned", in)
		}
		counts[in.id]++
	}
	if got, want := len(counts), 6; got != want {
		t.Fatalf("%d distinct stable instances picked, want all %d: %v", got, want, counts)
	}
	for id, c := range counts {
		if c < n/6*8/10 || c > n/6*12/10 {
			t.Errorf("%s picked %d times of %d, want about %d", id, c, n, n/6)
		}
	}
	// One stable among many: found by the walk when sampling misses it.
	many := make([]*instance, 10_000)
	for i := range many {
		many[i] = &instance{state: StatePending}
	}
	many[7777].state = StateStopped
	for range 20 {
		if in := pickStable(r, many); in != many[7777] {
			t.Fatalf("picked %+v, want the one stable instance", in)
		}
	}
	many[7777].state = StatePending
	if in := pickStable(r, many); in != nil {
		t.Fatalf("picked %+v from a list with no stable instance", in)
	}
}
