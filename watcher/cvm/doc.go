// Package cvm implements watcher.Source on the official Tencent Cloud Go SDK:
// it lists a target's instances with DescribeInstancesStatus, page by page,
// under a shared rate limiter, and looks instances up by ID.
//
// Everything Tencent-specific stays here: the SDK client set-up (no region
// breaker, no SDK retries, timeouts, a response size cap), the classification
// of Tencent error codes, the retry policy and the validation of responses.
// The simulator in cvmsim speaks the same wire format for tests and demos.
//
// # Mixed scans
//
// DescribeInstances also reports each instance's state, and Tencent counts
// its quota apart from DescribeInstancesStatus's (per API, access region
// and sub-account). With ScannerConfig.Describe set, a full scan reads page
// 0 (TotalCount) through DescribeInstancesStatus and hands the other
// offsets, from one queue, to the workers of both APIs as each API's
// limiter allows: at both APIs' rates a scan takes about
// rate1/(rate1+rate2) of one API's time. A page is validated the same way
// whichever API answered it (an item with a null or hostile ID or state is
// never an observation; a well-formed ID with an unusable state is
// Unreadable, never absent), a scan is complete only if every page
// succeeded, and each usable item of a DescribeInstances page also gives
// an entry of Scan.Described.
//
// Offset paging across two APIs covers the fleet only if both list it in
// the same order. The simulator lists both newest first; for the real API
// this is UNVERIFIED (Tencent documents no order for either). So it is
// guarded:
//
//   - Before any page goes through DescribeInstances, each mixed scan reads
//     page 0 through it once and compares it with DescribeInstancesStatus's
//     page 0 (the same IDs, allowing for a few fleet changes, in the same
//     relative order). If they differ, or DescribeInstances refuses the
//     credential or request, the target's scans read every page through
//     DescribeInstancesStatus for ScannerConfig.MixedPause (default an
//     hour), and the scanner logs it once.
//   - After a mixed scan, if every page agreed on TotalCount (the fleet did
//     not visibly change) but the distinct IDs do not add up to it, which a
//     single-API scan would not show, mixed scans pause the same way.
//   - Such a scan is still flagged (ScanStats.CountDrift), as any scan whose
//     pages do not add up, and it can make nothing worse than an offset
//     shift already does: an instance only becomes a disappearance after
//     Policy.ConfirmScans complete scans miss it and then a lookup by ID
//     (DescribeInstancesStatus with InstanceIds, not paging) does not find
//     it (watcher.Diff, Pending.Resolve), and a missed instance is listed
//     again by the next, single-API, scan. Two different states for one
//     instance make the scan incomplete, as before.
//
// Mixed scans are off with a nil ScannerConfig.Describe (cvmwatch:
// poll.describe_share: 0).
package cvm
