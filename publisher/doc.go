// Package publisher delivers cvmwatch events to NATS: JetStream (durable,
// de-duplicated, acknowledged), core NATS (fire and forget), and an in-memory
// fake for tests. It also sets up the JetStream stream, connects to NATS with
// the project's reliability settings, and runs the embedded NATS server used
// when no server is configured.
//
// Every implementation of watcher.Publisher here encodes an event the same
// way: subject from watcher.Event.Subject, body from
// watcher.MarshalCloudEvent, header Content-Type = watcher.ContentType and
// Nats-Msg-Id = the event ID. An event with an unsafe subject token or ID is
// refused, never published raw. The conformance suite in publishertest holds
// every implementation to that contract.
package publisher
