package store

import "github.com/cvmwatch/cvmwatch/watcher"

// The value encodings of the file layout (see the package documentation),
// exported so that a store on another medium (store/jsstore) keeps exactly
// the same bytes and refuses exactly the same values. Each Append function
// appends to dst and returns the extended slice; each Decode function is
// strict (a value decodes only if encoding the result gives back the same
// bytes) and never keeps val.

// AppendRecord appends the encoding of r without its InstanceID (the key).
func AppendRecord(dst []byte, r watcher.Record) ([]byte, error) { return appendRecord(dst, r) }

// DecodeRecord decodes the record of instance id.
func DecodeRecord(id string, val []byte) (watcher.Record, error) {
	return decodeRecord([]byte(id), val, nil)
}

// AppendScanMeta appends the encoding of m.
func AppendScanMeta(dst []byte, m watcher.ScanMeta) ([]byte, error) { return appendScanMeta(dst, m) }

// DecodeScanMeta decodes scan metadata.
func DecodeScanMeta(val []byte) (watcher.ScanMeta, error) { return decodeScanMeta(val) }

// AppendEvent appends the encoding of an outbox entry's event (its Seq is
// not part of it).
func AppendEvent(dst []byte, e watcher.Event) ([]byte, error) { return appendEvent(dst, e) }

// DecodeEvent decodes an outbox entry's event.
func DecodeEvent(val []byte) (watcher.Event, error) {
	oe, err := decodeOutboxEntry(appendSeqKey(nil, 0), val)
	return oe.Event, err
}

// AppendEnrichment appends the encoding of e without its InstanceID.
func AppendEnrichment(dst []byte, e watcher.Enrichment) ([]byte, error) {
	return appendEnrichment(dst, e)
}

// DecodeEnrichment decodes the enrichment of instance id.
func DecodeEnrichment(id string, val []byte) (watcher.Enrichment, error) {
	return decodeEnrichment([]byte(id), val)
}

// ValidateTarget refuses a target whose account or region is not a safe
// subject token, as Bolt and Memory do.
func ValidateTarget(t watcher.Target) error { return validateTarget(t) }

// ValidateCommit refuses the commits Bolt and Memory refuse (empty or
// oversized instance IDs, an ID both put and deleted, unstorable times).
func ValidateCommit(c watcher.Commit) error { return validateCommit(c) }

// ValidateEnrichments refuses the enrichments PutEnrichments refuses.
func ValidateEnrichments(es []watcher.Enrichment) error { return validateEnrich(es) }

// AppendPending appends the encoding of a pending attribution without its
// EventID (the key).
func AppendPending(dst []byte, p watcher.PendingAttribution) ([]byte, error) {
	return appendPending(dst, p)
}

// DecodePending decodes the pending attribution of event id.
func DecodePending(eventID string, val []byte) (watcher.PendingAttribution, error) {
	return decodePending([]byte(eventID), val)
}

// ValidateFollowUps refuses the follow-ups ResolveAttributions refuses.
func ValidateFollowUps(events []watcher.Event) error { return validateFollowUps(events) }
