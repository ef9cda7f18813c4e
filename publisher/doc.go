// Package publisher delivers cvmwatch events to NATS: JetStream (durable,
// de-duplicated, acknowledged) and core NATS (fire and forget). It also sets
// up the JetStream stream, connects to NATS with the project's reliability
// settings, runs the embedded NATS server used when no server is
// configured, and reads a stream back for the oracle (ReadStream). The
// in-memory fake for tests is apart, in mempub, so that using it links no
// NATS code.
//
// Every implementation of watcher.Publisher encodes an event the same way,
// with package wire: subject from watcher.Event.Subject, body from
// watcher.MarshalCloudEvent, header Content-Type = watcher.ContentType and
// Nats-Msg-Id = the event ID. An event with an unsafe subject token or ID is
// refused, never published raw. The conformance suite in publishertest holds
// every implementation to that contract.
package publisher
