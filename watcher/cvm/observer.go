package cvm

import (
	"errors"
	"regexp"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Observer is told about every API request and a scan's progress, for
// metrics. Implementations must be safe for concurrent use and quick.
type Observer interface {
	// Request follows every API request: code is "OK", the Tencent error
	// code, or a ClientError.* code for transport and parse failures. A code
	// is always at most 64 bytes of dot-separated [A-Za-z0-9] tokens: an
	// answer whose code is not of that shape is reported as
	// "ClientError.InvalidCode", so code is safe to use as a metric label.
	Request(account, action, code string, took time.Duration)
	// Progress reports the pages of the scan in progress: done of total
	// (total grows if the listing turns out longer than TotalCount said).
	Progress(t watcher.Target, done, total int)
}

type nopObserver struct{}

func (nopObserver) Request(string, string, string, time.Duration) {}
func (nopObserver) Progress(watcher.Target, int, int)             {}

// codeInvalid stands for an error code that is not of Tencent's shape: the
// code reaches metrics as a label, and a misbehaving endpoint or proxy must
// not be able to mint label values of its own.
const codeInvalid = "ClientError.InvalidCode"

// maxCode bounds a code, in bytes: Tencent's longest are about 50.
const maxCode = 64

// codeShape is Tencent's code form: dot-separated tokens of letters and
// digits, e.g. RequestLimitExceeded or AuthFailure.SignatureFailure.
var codeShape = regexp.MustCompile(`^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$`)

// codeOf names an error for metrics: a code of Tencent's shape as given
// (Tencent's set is finite), codeInvalid for any other code, or a
// ClientError.* family.
func codeOf(err error, c class) string {
	if err == nil {
		return "OK"
	}
	if e, ok := err.(*APIError); ok {
		if len(e.Code) > maxCode || !codeShape.MatchString(e.Code) {
			return codeInvalid
		}
		return e.Code
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
