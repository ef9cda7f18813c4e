package cvm

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// atomicInt is a counter shared by the goroutines of one scan.
type atomicInt = atomic.Int64

// accumulator merges pages into one view of a target: each instance once,
// instances reported with two different states set aside, every well-formed
// ID remembered even when its state was unusable. Not safe for concurrent
// use: pages are added by one goroutine.
type accumulator struct {
	states    map[string]watcher.State
	conflicts map[string]struct{}
	// named holds IDs listed with an unusable state (and not also with a
	// usable one).
	named map[string]struct{}
	// described holds, per instance, what the latest DescribeInstances
	// page that listed it usably said.
	described map[string]watcher.Enrichment

	pages, rejected, duplicates int
	// describedPages counts the pages read through DescribeInstances.
	describedPages int
	// anonymous counts rejected items that named no well-formed ID.
	anonymous  int
	firstTotal int
	drift      bool
	reasons    []string
}

func newAccumulator() *accumulator {
	return &accumulator{
		states:     map[string]watcher.State{},
		conflicts:  map[string]struct{}{},
		named:      map[string]struct{}{},
		described:  map[string]watcher.Enrichment{},
		firstTotal: -1,
	}
}

func (a *accumulator) add(p page) {
	a.pages++
	if a.firstTotal < 0 {
		a.firstTotal = p.total
	} else if p.total != a.firstTotal {
		a.drift = true
	}
	for _, o := range p.items {
		prev, seen := a.states[o.InstanceID]
		switch {
		case !seen:
			a.states[o.InstanceID] = o.State
		case prev == o.State:
			a.duplicates++
		default:
			a.conflicts[o.InstanceID] = struct{}{}
		}
	}
	if p.described != nil {
		a.describedPages++
	}
	for _, e := range p.described {
		if prev, ok := a.described[e.InstanceID]; !ok || e.FetchedAt.After(prev.FetchedAt) {
			a.described[e.InstanceID] = e
		}
	}
	a.rejected += p.rejected
	a.anonymous += p.anonymous
	usable := make(map[string]struct{}, len(p.items))
	for _, o := range p.items {
		usable[o.InstanceID] = struct{}{}
	}
	for _, id := range p.ids {
		if _, ok := usable[id]; !ok {
			a.named[id] = struct{}{}
		}
	}
	for _, r := range p.reasons {
		if len(a.reasons) < 2*maxRejectReasons {
			a.reasons = append(a.reasons, r)
		}
	}
}

// distinct counts the distinct well-formed IDs seen.
func (a *accumulator) distinct() int {
	n := len(a.states)
	for id := range a.named {
		if _, ok := a.states[id]; !ok {
			n++
		}
	}
	return n
}

// observations returns the usable observations sorted by ID.
func (a *accumulator) observations() []watcher.Observation {
	out := make([]watcher.Observation, 0, len(a.states))
	for id, st := range a.states {
		if _, bad := a.conflicts[id]; bad {
			continue
		}
		out = append(out, watcher.Observation{InstanceID: id, State: st})
	}
	slices.SortFunc(out, func(x, y watcher.Observation) int { return strings.Compare(x.InstanceID, y.InstanceID) })
	return out
}

// unreadable returns, sorted, the IDs that exist but have no usable state.
func (a *accumulator) unreadable() []string {
	var out []string
	for id := range a.conflicts {
		out = append(out, id)
	}
	for id := range a.named {
		if _, ok := a.states[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// describedSorted returns, sorted by ID, one Enrichment per instance read
// through a DescribeInstances page, only where it agrees with the
// observation kept (an instance in conflict has none): the latest such page's.
func (a *accumulator) describedSorted() []watcher.Enrichment {
	if len(a.described) == 0 {
		return nil
	}
	out := make([]watcher.Enrichment, 0, len(a.described))
	for id, e := range a.described {
		if _, bad := a.conflicts[id]; bad || a.states[id] != e.State {
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y watcher.Enrichment) int { return strings.Compare(x.InstanceID, y.InstanceID) })
	return out
}
