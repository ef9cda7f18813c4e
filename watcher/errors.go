package watcher

import "errors"

// ErrAuth marks a failure that retrying will not fix until credentials or
// permissions change (bad secret, expired token, access denied). The loop
// logs it clearly and waits for the next cycle instead of retrying.
var ErrAuth = errors.New("authentication or authorization failed")

// ErrIncomplete marks a scan that did not list every page.
var ErrIncomplete = errors.New("scan incomplete")
