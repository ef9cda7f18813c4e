// Package wire is the form cvmwatch messages take on NATS: the subject,
// headers and body of an event and of a scan summary. Every publisher
// encodes with it, so they all publish the same bytes for the same event.
//
// It imports only the standard library and watcher, never NATS: the
// in-memory publisher (publisher/mempub) encodes exactly like the NATS ones
// without linking a NATS client or server into the tests that use it.
package wire
