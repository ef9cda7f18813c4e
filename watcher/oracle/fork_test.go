package oracle

import "testing"

// Two writers continued ins-aaaaaaaa's chain from the same point: its
// sequence 2 is carried by two different transitions. The oracle names it
// a fork (besides the broken chain), once.
func TestCheckFindsAFork(t *testing.T) {
	g := good()
	forked := ev("ins-aaaaaaaa", 2, "STOPPED", "TERMINATED", sec(33), sec(42))
	r := Check(msgs(t, append(g, forked)...), truth, silent)
	if got, want := r.Count("fork"), 1; got != want {
		t.Fatalf("forks = %d, want %d:\n%s", got, want, r)
	}
	if got, want := r.Count("conflict"), 0; got != want {
		t.Errorf("conflicts = %d, want %d:\n%s", got, want, r)
	}
}

// One event id stored with two contents is a conflicting id, not a fork:
// the second copy never enters the chain.
func TestCheckConflictingIDIsNotAFork(t *testing.T) {
	g := good()
	other := g[0]
	other.ObservedAt = sec(13)
	r := Check(append(msgs(t, g...), msgs(t, other)[0]), truth, silent)
	if got, want := r.Count("conflict"), 1; got != want {
		t.Fatalf("conflicts = %d, want %d:\n%s", got, want, r)
	}
	if got, want := r.Count("fork"), 0; got != want {
		t.Errorf("forks = %d, want %d:\n%s", got, want, r)
	}
}

func TestCheckFaithfulStreamHasNoFork(t *testing.T) {
	r := Check(msgs(t, good()...), truth, silent)
	if got := r.Count("fork") + r.Count("conflict"); got != 0 {
		t.Fatalf("forks and conflicts = %d on a faithful stream:\n%s", got, r)
	}
}
