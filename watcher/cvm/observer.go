package cvm

import (
	"errors"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Observer is told about every API request and a scan's progress, for
// metrics. Implementations must be safe for concurrent use and quick.
type Observer interface {
	// Request follows every API request: code is "OK", the Tencent error
	// code, or a ClientError.* code for transport and parse failures.
	Request(account, action, code string, took time.Duration)
	// Progress reports the pages of the scan in progress: done of total
	// (total grows if the listing turns out longer than TotalCount said).
	Progress(t watcher.Target, done, total int)
}

type nopObserver struct{}

func (nopObserver) Request(string, string, string, time.Duration) {}
func (nopObserver) Progress(watcher.Target, int, int)             {}

// codeOf names an error for metrics, with bounded cardinality: a Tencent
// code as given (the set is finite), or a ClientError.* family.
func codeOf(err error, c class) string {
	if err == nil {
		return "OK"
	}
	if e, ok := err.(*APIError); ok {
		return truncate(e.Code, 64)
	}
	switch {
	case c == classCanceled:
		return "ClientError.Canceled"
	case errors.Is(err, ErrMalformed):
		return "ClientError.Malformed"
	default:
		return "ClientError.Transport"
	}
}
