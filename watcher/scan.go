package watcher

import (
	"context"
	"time"
)

// Scan is the result of listing every instance of one target.
//
// Observations holds each instance seen, once, with a valid ID and state,
// sorted by InstanceID. It is usable even when the scan is not complete: the
// states it holds were really reported. Only a complete scan may be used as
// evidence that an instance it does not hold is gone.
type Scan struct {
	Target       Target
	Observations []Observation
	// Unreadable holds, sorted, the IDs of instances that were listed but
	// whose state could not be used (null, malformed, or two different states
	// in one scan). They exist: they are neither absent nor changed.
	Unreadable []string
	// Complete is true only if every page of the listing succeeded and no
	// instance was reported with two different states.
	Complete bool
	// Described holds, sorted by InstanceID, what DescribeInstances said
	// about the instances whose page was read through it instead of
	// DescribeInstancesStatus (a Source may take part of a scan's pages
	// through either API). Each entry's State is the state that page
	// reported, the one in Observations; FetchedAt is when its request was
	// sent. Empty when every page was read through DescribeInstancesStatus.
	// The cycle compares each entry's Operation.RequestID with the stored
	// enrichment's to find operations that left no visible state change.
	Described []Enrichment
	Stats     ScanStats
}

// ScanStats describes the work one scan did. Counts are of API requests and
// items, not of distinct instances, unless named otherwise.
type ScanStats struct {
	Started  time.Time
	Duration time.Duration
	// TotalCount is the instance count the first page reported.
	TotalCount int
	// Pages is the number of pages that succeeded; PagesFailed those that did
	// not after every retry.
	Pages       int
	PagesFailed int
	// DescribedPages counts the Pages read through DescribeInstances
	// instead of DescribeInstancesStatus (see Scan.Described).
	DescribedPages int
	// Requests counts every API request, retries included.
	Requests  int
	Retries   int
	Throttles int
	// Rejected counts items that could not be used (hostile or malformed ID
	// or state, null fields); Duplicates items seen again with the same state;
	// Conflicts instances seen with two different states (left out).
	Rejected   int
	Duplicates int
	Conflicts  int
	// CountDrift is true when pages disagreed on TotalCount or the items seen
	// did not add up to it: the fleet changed during paging (offset shift) or
	// the API lied. Such a scan may miss or repeat instances, which is why a
	// disappearance is always confirmed by a lookup by ID.
	CountDrift bool
}

// LookupResult is what a lookup by ID proved. An ID in neither list was not
// checked (its batch failed, or it cannot be looked up): nothing may be
// inferred about it.
type LookupResult struct {
	// Found holds the IDs that exist, with their current state.
	Found []Observation
	// Absent holds the IDs that the API was asked about and did not report.
	Absent []string
}

// Source lists the instances of one target. Implementations are safe for
// concurrent use, own their retry policy and rate limiting, and never panic on
// a malformed API response.
type Source interface {
	// Scan lists every instance of the target. The returned Scan is always
	// usable; err is nil exactly when Scan.Complete is true and otherwise says
	// why the scan is not complete. Errors wrap ErrAuth when retrying cannot
	// help until the credentials or permissions change.
	Scan(ctx context.Context) (Scan, error)

	// Lookup asks for the given instance IDs directly (not by paging). The
	// result is valid even when err is not nil; err says which part could not
	// be checked.
	Lookup(ctx context.Context, ids []string) (LookupResult, error)
}

// Page is what one page of a scan read, handed over while the scan runs.
type Page struct {
	// Observations holds the page's usable observations (valid ID and
	// state), in the API's order. A later page of the same scan may list
	// an instance again, even in another state (the fleet moved during
	// paging); Scan.Observations is the reconciled view.
	Observations []Observation
	// Started is no later than the moment the page was read (its first
	// request was sent after it), Done no earlier (its answer had arrived).
	Started, Done time.Time
}

// PageScanner is a Source that can hand over each page of a scan as it
// arrives, before the scan is complete. The hot set uses it to follow an
// instance seen in a transitional state from its page on, not from the
// scan's commit (see hotRound).
type PageScanner interface {
	Source
	// ScanPages is Scan, and also calls page with each page that
	// succeeded, as it arrives. Calls are not concurrent, and page must
	// be quick (it delays the scan) and must not keep the Page's slice.
	ScanPages(ctx context.Context, page func(Page)) (Scan, error)
}
