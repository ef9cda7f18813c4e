package jsstore

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// ErrFenced is wrapped by the error of a write that the server refused
// because the target's journal has messages this store has not read:
// another replica took the target over, or an earlier write of this store
// whose outcome was unknown was stored after all. It always comes with
// ErrReload.
var ErrFenced = errors.New("journal written by another writer")

// ErrReload is wrapped by the error of a Commit whose outcome is unknown or
// that was fenced, and of every Commit to that target until Load reads its
// journal again: the caller's snapshot may no longer match the journal. It
// is watcher.ErrReload, so the watcher's loop reloads the target's
// snapshot on it.
var ErrReload = watcher.ErrReload

// ErrCorrupt is wrapped by the error of a read that met a journal message
// that does not decode. The store refuses the target rather than guess.
var ErrCorrupt = errors.New("journal corrupt")

// wrongLastSequence reports whether err is the server's refusal of an
// expected last sequence: 10071, or 10164 on replicated streams.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
