package notifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The headers of a generic webhook request.
const (
	HeaderTimestamp = "X-Cvmwatch-Timestamp"
	HeaderSignature = "X-Cvmwatch-Signature"
)

// Webhook posts to a user's own service: POST URL with a JSON body
//
//	{"title": ..., "text": ..., "events": [<the CloudEvents, as in the stream>]}
//
// With a Secret, the request carries X-Cvmwatch-Timestamp (Unix seconds)
// and X-Cvmwatch-Signature: "sha256=" + hex HMAC-SHA256, keyed with the
// secret, over timestamp + "." + body (see WebhookSign). A receiver checks
// the signature and refuses a timestamp far from its clock (replays).
//
// It answers like HTTP: 2xx accepted, 429 throttled (Retry-After), 408 and
// 5xx temporary, others permanent. At most 10 requests a second.
type Webhook struct {
	URL    string
	Secret string
}

var _ Platform = (*Webhook)(nil)

// Limits: 10 a second, 1 MiB of text.
func (*Webhook) Limits() Limits { return Limits{Every: 100 * time.Millisecond, MaxBytes: 1 << 20} }

// Style is plain text.
func (*Webhook) Style() Style { return StylePlain }

func (*Webhook) String() string { return "webhook" }

// webhookBody is the JSON a generic webhook receives.
type webhookBody struct {
	Title  string            `json:"title"`
	Text   string            `json:"text"`
	Events []json.RawMessage `json:"events"`
}

// Request posts m and its events, signed at now when there is a secret.
func (w *Webhook) Request(ctx context.Context, m Message, now time.Time) (*http.Request, error) {
	wb := webhookBody{Title: m.Title, Text: m.Text, Events: make([]json.RawMessage, 0, len(m.Events))}
	for _, e := range m.Events {
		raw, err := e.CloudEvent()
		if err != nil {
			return nil, err
		}
		wb.Events = append(wb.Events, raw)
	}
	body, err := json.Marshal(wb)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook url is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	if w.Secret != "" {
		ts := strconv.FormatInt(now.Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, WebhookSign(ts, body, w.Secret))
	}
	return req, nil
}

// WebhookSign is "sha256=" + hex HMAC-SHA256 keyed with secret over
// timestamp + "." + body.
func WebhookSign(timestamp string, body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Answer judges by HTTP status.
func (*Webhook) Answer(status int, h http.Header, body []byte) error {
	if r := httpRefusal(status, h, body); r != nil {
		return r
	}
	return nil
}
