package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Message is one chat message about some events: its text, ready for the
// platform (markdown of the platform's dialect), and the events it covers
// (which the generic webhook sends as JSON).
type Message struct {
	Title  string
	Text   string
	Events []Event
}

// Platform is one chat platform's wire format, limits and answers. An
// implementation holds the webhook's URL and secret and never shows them
// (not in errors, not in String). Its methods are safe for concurrent use.
type Platform interface {
	// Limits are the platform's documented limits for one webhook.
	Limits() Limits
	// Style is how the default templates write for this platform.
	Style() Style
	// Request builds the HTTP request that posts m at now (the signing
	// time). It does not keep m.
	Request(ctx context.Context, m Message, now time.Time) (*http.Request, error)
	// Answer judges the platform's response (status and the body, already
	// read): nil when the message was accepted, else an error that is an
	// *Refusal when the platform answered.
	Answer(status int, header http.Header, body []byte) error
}

// Limits are one webhook's limits.
type Limits struct {
	// Every is the least time between two messages: the platform's rate,
	// with a margin (see perMinute), so that no window of the platform's
	// length ever holds more than its limit.
	Every time.Duration
	// MaxBytes is the most a message's text may hold, in bytes of UTF-8;
	// with MaxBody, only what the default template aims at.
	MaxBytes int
	// MaxBody, when not 0, is the most the request's body may hold, in
	// bytes: the JSON around the text, and the text as JSON escapes it
	// (see Parts).
	MaxBody int
}

// Parts cuts m's text into the parts p takes, one request each: at most
// Limits().MaxBytes bytes of text, or, for a platform that bounds the
// request body (Limits().MaxBody), text whose request, m's title and
// signature included, is at most MaxBody bytes. now is the signing time.
func Parts(ctx context.Context, p Platform, m Message, now time.Time) ([]string, error) {
	lim := p.Limits()
	if lim.MaxBody == 0 {
		return Split(m.Text, lim.MaxBytes), nil
	}
	empty := m
	empty.Text = ""
	req, err := p.Request(ctx, empty, now)
	if err != nil {
		return nil, err
	}
	return SplitEncoded(m.Text, lim.MaxBody-int(req.ContentLength)), nil
}

// perMinute is the interval between messages that keeps any 60-second
// window at n messages or fewer: 60s/n, 5% longer, since a token bucket
// with a burst of 1 lets n+1 messages into a closed window of exactly
// 60s/n*n.
func perMinute(n int) time.Duration { return time.Minute / time.Duration(n) * 105 / 100 }

// Refusal is a platform's answer that did not accept a message.
type Refusal struct {
	// Status is the HTTP status; Code the platform's error code (errcode,
	// code), if any.
	Status int
	Code   int
	Msg    string
	// Throttled: the platform said "too fast" (429, or its throttle code).
	Throttled bool
	// Temporary: trying again later may succeed (throttling, 5xx, 408).
	// A refusal that is not temporary is given up at once.
	Temporary bool
	// RetryAfter is the platform's own wait (Retry-After), or the wait its
	// throttle code implies; 0 when it says none.
	RetryAfter time.Duration
}

func (r *Refusal) Error() string {
	s := fmt.Sprintf("refused: http %d", r.Status)
	if r.Code != 0 {
		s += fmt.Sprintf(", code %d", r.Code)
	}
	if r.Msg != "" {
		s += ": " + r.Msg
	}
	return s
}

// ErrGiveUp marks a message given up: a refusal that is not temporary, or
// retries that ran out of time. Its events are acknowledged without it.
var ErrGiveUp = errors.New("given up")

// httpRefusal judges a status by HTTP alone: 2xx accepted, 429 throttled
// (with Retry-After), 408 and 5xx temporary, any other status permanent.
func httpRefusal(status int, header http.Header, body []byte) *Refusal {
	if status >= 200 && status < 300 {
		return nil
	}
	r := &Refusal{Status: status, Msg: snippet(body)}
	switch {
	case status == http.StatusTooManyRequests:
		r.Throttled, r.Temporary = true, true
		r.RetryAfter = retryAfter(header.Get("Retry-After"))
	case status == http.StatusRequestTimeout || status >= 500:
		r.Temporary = true
		r.RetryAfter = retryAfter(header.Get("Retry-After"))
	}
	return r
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; 0 when
// absent or unreadable. It is capped at an hour: a hostile or broken
// receiver cannot park a sink for longer.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), time.Hour)
}

// snippet is the start of a response body, for an error message: bodies
// are the receiver's, never ours, so they hold no secret of ours.
func snippet(b []byte) string {
	const n = 200
	s := string(b)
	if len(s) > n {
		s = truncateUTF8(s, n) + "..."
	}
	return s
}
