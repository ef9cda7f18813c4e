package cvm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Sentinels callers branch on. watcher.ErrAuth marks auth failures.
var (
	// ErrThrottled marks a RequestLimitExceeded* answer.
	ErrThrottled = errors.New("throttled by the API")
	// ErrMalformed marks a response that could not be used: not JSON, an
	// empty object, missing or absurd fields.
	ErrMalformed = errors.New("malformed response")
	// ErrRejected marks a request the API refused as invalid; retrying the
	// same request cannot help.
	ErrRejected = errors.New("request rejected by the API")
)

// class is what the retry loop does with an error.
type class int

const (
	classRetry    class = iota // server, network, malformed: slow the limiter a little, back off, retry
	classThrottle              // slow the limiter more, back off, retry
	classAuth                  // give up until the next cycle
	classReject                // give up: the request itself is wrong
	classCanceled              // the caller gave up
)

// APIError is a Tencent error answer, reduced to what is safe and useful to
// log: the action, a bounded code and message, and the request id. The SDK's
// own error text can embed a whole response body; this one cannot.
type APIError struct {
	Action    string
	Code      string
	Message   string
	RequestID string
	class     class
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: %s", e.Action, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Is lets callers match the class sentinels with errors.Is.
func (e *APIError) Is(target error) bool {
	switch e.class {
	case classAuth:
		return target == watcher.ErrAuth
	case classThrottle:
		return target == ErrThrottled
	case classReject:
		return target == ErrRejected
	}
	if target == ErrMalformed {
		return strings.HasPrefix(e.Code, "ClientError.ParseJsonError") || e.Code == "ClientError.IOError"
	}
	return false
}

// classifyCode maps a Tencent error code to what the retry loop does. It is
// the one place that knows Tencent's code families.
func classifyCode(code string) class {
	switch Family(code) {
	case FamilyThrottle:
		return classThrottle
	case "AuthFailure", "UnauthorizedOperation", "OperationDenied":
		return classAuth
	case "InternalError", "InternalServerError", "ServiceUnavailable", "ResourceUnavailable",
		"ClientError": // network, HTTP status, unparsable body
		return classRetry
	default:
		// InvalidParameter*, InvalidInstanceId.*, MissingParameter,
		// UnknownParameter, InvalidAction, UnsupportedRegion, and any code we
		// have never seen: the same request will fail the same way.
		return classReject
	}
}

// FamilyThrottle is the family of Tencent's throttling codes.
const FamilyThrottle = "RequestLimitExceeded"

// families are the code families the scanner treats apart from a rejected
// request: throttling, auth, and server or transport errors.
var families = []string{FamilyThrottle, "AuthFailure", "UnauthorizedOperation", "OperationDenied",
	"InternalError", "InternalServerError", "ServiceUnavailable", "ResourceUnavailable", "ClientError"}

// Family returns the family of an error code that the scanner handles
// apart (throttling, auth, server or transport errors): the family itself
// or one of its sub-codes ("RequestLimitExceeded",
// "RequestLimitExceeded.UinLimitExceeded"), never a longer word that merely
// starts like it ("RequestLimitExceededX"). Any other code gives "".
func Family(code string) string {
	for _, f := range families {
		if code == f || strings.HasPrefix(code, f+".") {
			return f
		}
	}
	return ""
}

// maxMessage bounds the part of an API message kept in an error.
const maxMessage = 160

// wrapError turns whatever the SDK returned into an error the retry loop can
// classify, without keeping unbounded text from the response. Only the
// caller's ctx decides cancellation: an HTTP timeout also matches
// context.DeadlineExceeded, but it is a network error to retry.
func wrapError(ctx context.Context, action string, err error) (error, class) {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", action, context.Cause(ctx)), classCanceled
	}
	var sdkErr *tcerr.TencentCloudSDKError
	if errors.As(err, &sdkErr) {
		c := classifyCode(sdkErr.Code)
		msg := sdkErr.Message
		if cause := sdkErr.Unwrap(); cause != nil {
			msg += ": " + cause.Error()
		}
		return &APIError{
			Action:    action,
			Code:      truncate(sdkErr.Code, maxCode), // the server's string: bound it like the message
			Message:   truncate(msg, maxMessage),
			RequestID: truncate(sdkErr.RequestId, 64),
			class:     c,
		}, c
	}
	if errors.Is(err, ErrMalformed) {
		return fmt.Errorf("%s: %w", action, err), classRetry
	}
	// Transport errors that the SDK did not wrap: dial, timeout, body cap.
	return fmt.Errorf("%s: %s", action, truncate(err.Error(), maxMessage)), classRetry
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
