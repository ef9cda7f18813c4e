package notifier

import (
	"context"
	"net/http"
	"time"
)

// Slack posts to a Slack incoming webhook: POST URL with {"text": ...} in
// mrkdwn. The URL is the secret.
//
// Limits: about one message a second per webhook ("bursts allowed over
// short periods"; taken strictly); above it HTTP 429 with Retry-After in
// seconds, which is waited. Text is truncated by Slack above 40000
// characters and a section block holds 3000; messages are split at 3000
// bytes so that neither ever applies.
type Slack struct {
	URL string
}

var _ Platform = (*Slack)(nil)

// Limits: one a second, 3000 bytes.
func (*Slack) Limits() Limits { return Limits{Every: time.Second * 105 / 100, MaxBytes: 3000} }

// Style is mrkdwn.
func (*Slack) Style() Style { return StyleSlack }

func (*Slack) String() string { return "slack" }

// Request posts m's text.
func (s *Slack) Request(ctx context.Context, m Message, _ time.Time) (*http.Request, error) {
	return jsonRequest(ctx, s.URL, map[string]any{"text": m.Text})
}

// Answer: 2xx is accepted, 429 is throttling (Retry-After), 5xx temporary,
// any other status (invalid_payload, channel_not_found, ...) permanent.
func (*Slack) Answer(status int, h http.Header, body []byte) error {
	if r := httpRefusal(status, h, body); r != nil {
		return r
	}
	return nil
}
