// Package lease shares targets between cvmwatch replicas through a
// JetStream KV bucket, with no other coordination service.
//
// The bucket has a bucket-level TTL (stream MaxAge) equal to the lease
// TTL; per-key TTLs are never used (an Update drops them). A lease is the
// key lease.<account>.<region>: Create takes it (it fails while another
// replica's lease has not expired), Update with the last revision renews it
// (it fails once another replica took it), Delete with the last revision
// releases it. A replica registers itself under replica.<id>, renewed like
// a lease, so every replica sees the same live set and computes the same
// balanced assignment (Assign); it takes the targets assigned to it and
// releases the others.
//
// Time: the server expires a lease TTL after its last write, by its own
// clock. A holder counts its lease valid until TTL minus Margin after it
// sent the write that took or last renewed it, so its validity ends before
// the server can give the lease to anyone else, whatever pauses the holder
// suffers: after a pause (GC, SIGSTOP, a network cut) Valid is false before
// the holder's next renewal tells it the lease is gone. A holder must still
// be fenced for the writes it started while valid: see store/jsstore and
// publisher.Fenced.
package lease
