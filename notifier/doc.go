// Package notifier tells people what the event stream says: it reads state
// events from JetStream with a durable consumer, routes them to chat rooms
// (WeCom, DingTalk, Feishu/Lark, Slack, a signed generic webhook), groups a
// route's events into one message, keeps to every platform's rate and size
// limits, and acknowledges an event only once every message that includes
// it was accepted or definitely given up.
//
// It is to subscribers what package publisher is to the watcher: it imports
// watcher for the event type and nats.go for the stream; cmd/cvmwatch wires
// it (`cvmwatch notify`, the notify section of `cvmwatch run`).
//
// The parts, one per file: Event (the decoded event with its optional
// enrichment), Router (ordered routes and their match rules), groups and
// Messages (grouping, collapsing, the default and user templates, staleness
// summaries), split (size limits), Platform (one file per chat platform),
// Sender (rate limit, retries), SentStore (the dedupe memory, a JetStream KV
// bucket), Pipeline (routes to groups to senders, with completion) and
// Consumer (the durable JetStream consumer that feeds it). notifiertest
// holds a fake room for each platform.
package notifier
