// Package watcher is the core of cvmwatch: the domain (targets, instance
// states, observations, scans), the pure logic that turns observations into
// transitions, and the small interfaces the loop consumes. Adapters (the
// Tencent CVM scanner in watcher/cvm, the bbolt store, the NATS publisher)
// import this package and never the other way round.
package watcher
