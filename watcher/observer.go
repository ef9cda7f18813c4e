package watcher

import (
	"time"
)

// Observer is told what the loop and the relay do, for metrics and logs.
// Calls come from every target's goroutines at once: implementations must be
// safe for concurrent use and quick, and must not keep the Scan or Commit.
type Observer interface {
	// ScanCommitted follows every durable commit of a scan. byState counts
	// the target's live instances after it; held counts disappearances held
	// back as a mass disappearance.
	ScanCommitted(t Target, scan Scan, c Commit, byState map[State]int, held int)
	// CycleFailed follows a cycle that committed nothing (the scan learned
	// nothing, the snapshot could not be loaded, or the commit failed).
	CycleFailed(t Target, err error)
	// Relayed follows every relay attempt that had entries to publish.
	Relayed(t Target, published int, took time.Duration, err error)
	// OutboxState follows every commit and relay attempt.
	OutboxState(t Target, depth int, oldest time.Time)
	// Enriched follows every enrichment attempt: kind EnrichEvents for a
	// cycle's events (asked instances, got described in time, err why not
	// all), EnrichRefresh for each page of the background refresh and for
	// a refresh that failed.
	Enriched(t Target, kind string, asked, got int, took time.Duration, err error)
	// HotLookedUp follows every lookup of a batch of the hot set (asked
	// IDs, at most 100), every round that found the hot set empty (asked
	// 0), and every early commit of the pages of a scan in flight (asked
	// 0, c not empty or err set). inMotion is the hot set's size when the
	// round began (after the early commit); c is what the lookup or early
	// commit committed (its events are in the outbox); err is set when
	// part of the lookup failed, when its commit failed, or, as
	// ErrHotSuperseded, when its answer was set aside.
	HotLookedUp(t Target, inMotion, asked int, c Commit, err error)
}

// RefreshObserver is an Observer that is also told about every commit of
// the operation events a background refresh found (see RefreshOnce); scans
// and hot lookups report theirs through ScanCommitted and HotLookedUp.
type RefreshObserver interface {
	RefreshCommitted(t Target, c Commit)
}

// TargetStatus is what the loop knows about a target's progress, for health
// checks and the state command.
type TargetStatus struct {
	Target Target
	// Interval is the time between the target's scans.
	Interval time.Duration
	// LastScan and LastComplete are when the latest committed scan and the
	// latest committed complete scan started (zero: none yet).
	LastScan     time.Time
	LastComplete time.Time
	Baselined    bool
	// ByState counts live instances per state after the latest commit.
	ByState map[State]int
	// Held counts disappearances currently held back as a mass disappearance.
	Held int
	// OutboxDepth and OutboxOldest describe the events not yet published.
	OutboxDepth  int
	OutboxOldest time.Time
	// LastError is the latest cycle's error, if it failed or was incomplete.
	LastError string
	// EnrichError says why the latest enrichment attempt was not complete
	// (events then go out without data.instance); empty when it was. It
	// does not make the target unhealthy.
	EnrichError string
	// ActorError says why the latest actor lookup failed (events then go
	// out without data.operation.actor); empty when it worked. It does not
	// make the target unhealthy either.
	ActorError string
}

type nopObserver struct{}

func (nopObserver) ScanCommitted(Target, Scan, Commit, map[State]int, int)  {}
func (nopObserver) CycleFailed(Target, error)                               {}
func (nopObserver) Relayed(Target, int, time.Duration, error)               {}
func (nopObserver) OutboxState(Target, int, time.Time)                      {}
func (nopObserver) Enriched(Target, string, int, int, time.Duration, error) {}
func (nopObserver) HotLookedUp(Target, int, int, Commit, error)             {}
