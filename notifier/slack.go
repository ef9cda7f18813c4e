package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
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
// any other status (invalid_payload, channel_not_found, ...) permanent. A
// JSON answer ({"ok":false,"error":...}) is read whatever the status:
// ok false is a refusal even in a 2xx, and error rate_limited is
// throttling, waiting the longer of Retry-After and its retry_after.
func (*Slack) Answer(status int, h http.Header, body []byte) error {
	r := httpRefusal(status, h, body)
	var ans struct {
		OK         *bool  `json:"ok"`
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.OK == nil || (*ans.OK && r == nil) {
		if r != nil {
			return r
		}
		return nil
	}
	if r == nil {
		r = &Refusal{Status: status}
	}
	if !*ans.OK && ans.Error != "" {
		r.Msg = truncateUTF8(ans.Error, 200)
	}
	if ans.Error == "rate_limited" {
		wait := retryAfter(strconv.Itoa(ans.RetryAfter)) // capped as the header is
		r.Throttled, r.Temporary, r.RetryAfter = true, true, max(r.RetryAfter, wait)
	}
	return r
}
