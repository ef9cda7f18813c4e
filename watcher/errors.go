package watcher

import "errors"

// ErrAuth marks a failure that retrying will not fix until credentials or
// permissions change (bad secret, expired token, access denied). The loop
// logs it clearly and waits for the next cycle instead of retrying.
var ErrAuth = errors.New("authentication or authorization failed")

// ErrIncomplete marks a scan that did not list every page.
var ErrIncomplete = errors.New("scan incomplete")

// ErrReload is wrapped by a Store's error when the caller's snapshot of a
// target may no longer match what the store holds: a write whose outcome
// is unknown, or one refused because another writer wrote first (a
// replicated store, see store/jsstore). The loop then drops the target's
// snapshot and loads it from the store again before its next commit,
// instead of diffing on the old one. bbolt never returns it: its failed
// commits never apply.
var ErrReload = errors.New("target must be loaded again before the next commit")
