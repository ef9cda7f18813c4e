// Package jsstore is a watcher.Store kept in a JetStream stream, so that
// the snapshot and the outbox of a target survive the loss of the machine
// that wrote them: a replica that takes a target over reads them from the
// cluster and continues every instance's sequence and chain exactly where
// the previous owner left it. It passes store/storetest unchanged. bbolt
// (package store) stays the single-node store.
//
// # Layout
//
// Each target has a journal: the messages of one subject,
// <prefix>.<account>.<region>, in a stream of its own (default
// CVMWATCH_STATE on "cvmwatch_state.>", file storage, replicated like the
// event stream). A journal message is a list of operations encoded with the
// value encodings of package store:
//
//	'z'                           reset: the operations after it are a snapshot
//	'r' id str, record bytes      put a record
//	'd' id str                    delete a record and its enrichment
//	'n' id str, enrichment bytes  put an enrichment
//	'p' event id str, bytes       put a pending attribution (actor lookup)
//	'q' event id str              remove a pending attribution (resolved)
//	'e' seq uvarint, event bytes  append an outbox entry
//	'a' upTo uvarint              acknowledge outbox entries <= upTo
//	'x' next uvarint              the next outbox sequence
//	'm' meta bytes                replace the scan metadata
//
// (str and bytes are a uvarint length and the bytes.) One Commit, one
// Acknowledge, one PutEnrichments is one journal write; a write larger than
// the server's max payload is cut into parts carried by consecutive
// messages with a Cvmwatch-Part header "i/n", and a reader applies it only
// once its last part is read: a write cut short by a crash is ignored,
// which makes every write atomic. A snapshot (compaction) is a write
// starting with 'z'; once it is stored, the journal's older messages are
// purged.
//
// # Fencing
//
// Every journal message is published with the expected last sequence of
// its subject (Nats-Expected-Last-Subject-Sequence): the sequence of the
// journal's last message as this store last read or wrote it. A writer
// whose view is stale, such as a replica that lost its lease during a
// pause and has not noticed, is refused by the server and gets ErrFenced;
// its write changes nothing a reader applies. So the journal is linear:
// every outbox entry, hence every event any replica can publish, was
// derived from the state the previous write left, and two writers can
// never give one instance's sequence two different events.
//
// # Contract beyond watcher.Store
//
// A Commit either applies (nil error) or not (error), except when the
// outcome of a journal write is unknown (a timeout, a disconnect) or the
// journal was written by someone else: the error then wraps ErrReload (and
// ErrFenced for the latter), the store forgets its cached view of the
// target, and refuses every further Commit to it with ErrReload until Load
// reads the journal again. The caller must rebuild its snapshot from that
// Load before committing; other calls re-read the journal themselves.
package jsstore
