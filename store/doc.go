// Package store persists cvmwatch's per-target snapshot and transactional
// outbox. Bolt keeps them in one bbolt file; Memory keeps them in memory with
// the same semantics, for tests. Both implement watcher.Store and pass the
// conformance suite in store/storetest.
//
// # File layout (format version 1)
//
// The bbolt file has two top-level buckets:
//
//	cvmwatch                  format marker: "format" = uint32 big-endian version
//	targets                   one bucket per target, keyed account 0x00 region
//	  <account>\x00<region>
//	    records               instance ID -> encoded watcher.Record
//	    enrich                instance ID -> encoded watcher.Enrichment (optional:
//	                          created by the first commit or refresh that stores one)
//	    outbox                uint64 big-endian seq -> encoded watcher.Event
//	    meta                  "scan" -> encoded watcher.ScanMeta
//	                          "next" -> uint64 big-endian: the next outbox seq
//
// Account and region are safe subject tokens ([A-Za-z0-9_-]), so the 0x00
// separator is unambiguous and byte order of the keys is "account, then
// region". The "next" counter is kept apart from the outbox so that a
// sequence is never reused, even after Acknowledge empties the outbox.
//
// A Commit is one bbolt read-write transaction that touches only the keys it
// changes: a commit with nothing but scan metadata rewrites the meta bucket
// and leaves every page of the records and outbox buckets as it was.
//
// # Values
//
// Every value starts with an encoding version byte (1), then a flags byte
// saying which optional fields are present, then the fields. Integers are
// varints (binary.AppendUvarint; signed ones zig-zag via AppendVarint),
// strings are a uvarint length followed by the bytes, and times are the
// signed varint of their Unix nanoseconds, present only when the time is not
// the zero time. Decoding is strict: an unknown version or flag, a truncated
// or over-long field, a non-minimal varint or trailing bytes is an error, so
// a value decodes only if encoding the result gives back the same bytes.
//
//	record (key: instance ID)
//	  1 | flags(1:Since 2:LastSeen) | State str | Sequence uvarint
//	    | [Since varint] | [LastSeen varint] | Missing varint
//	scan meta
//	  1 | flags(1:Baselined 2:LastScan 4:LastComplete)
//	    | [LastScan varint] | [LastComplete varint] | Scans uvarint | CompleteScans uvarint
//	outbox entry (key: seq)
//	  1 | flags(1:ObservedAt 2:PreviousObservedAt 4:Instance 8:Operation 16:Instance.Truncated)
//	    | ID str | Account str | Region str
//	    | InstanceID str | From str | To str | Sequence uvarint
//	    | [ObservedAt varint] | [PreviousObservedAt varint] | [instance] | [operation]
//	enrichment (key: instance ID)
//	  1 | flags(1:FetchedAt 2:Instance.Truncated) | State str | [FetchedAt varint]
//	    | instance | operation
//	instance
//	  Name str | Zone str | InstanceType str | uvarint n, n PrivateIPs str
//	    | uvarint n, n PublicIPs str | uvarint n, n (Key str, Value str)
//	    | ChargeType str | CreatedTime str | ExpiredTime str | RestrictState str
//	    | IsolatedSource str
//	operation
//	  Name str | State str | RequestID str | Error str
//
// The enrichment fields and the enrich bucket were added without a new
// format version: files written before them read unchanged (no flag, no
// bucket), but an older cvmwatch refuses an outbox entry that carries
// them (unknown flag), so downgrading needs an empty outbox.
//
// Times come back in UTC and Equal to what was stored. Times outside the
// range of Unix nanoseconds (years 1678 to 2262), other than the zero time,
// cannot be stored; a commit holding one is refused.
package store
