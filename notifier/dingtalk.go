package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DingTalk posts to a DingTalk (钉钉) custom robot:
// POST https://oapi.dingtalk.com/robot/send?access_token=TOKEN with
// {"msgtype":"markdown","markdown":{"title":...,"text":...}}.
//
// With a Secret (加签), each request carries &timestamp=MS&sign=SIGN where
// SIGN is url-encoded base64 of HMAC-SHA256, keyed with the secret, over
// timestamp+"\n"+secret; the timestamp is in milliseconds and must be within
// an hour of DingTalk's clock.
//
// Limits: a body of at most 20000 bytes (errcode 460101), 20 messages a
// minute per robot; above that the robot is throttled for 10 minutes and
// answers errcode 130101 inside HTTP 200, so a throttled message waits 10
// minutes before its next try.
type DingTalk struct {
	URL    string
	Secret string
}

var _ Platform = (*DingTalk)(nil)

// DingTalk's error codes.
const (
	DingTalkThrottled = 130101
	DingTalkTooLong   = 460101
	dingTalkPenalty   = 10 * time.Minute
)

// Limits: 20 a minute; a body of 20000 bytes, the text aiming at 18000 to
// leave room for the JSON around it and its escapes.
func (*DingTalk) Limits() Limits {
	return Limits{Every: perMinute(20), MaxBytes: 18000, MaxBody: 20000}
}

// Style is markdown.
func (*DingTalk) Style() Style { return StyleMarkdown }

func (*DingTalk) String() string { return "dingtalk" }

// Request posts m as markdown, signed at now when there is a secret.
func (d *DingTalk) Request(ctx context.Context, m Message, now time.Time) (*http.Request, error) {
	u := d.URL
	if d.Secret != "" {
		ts := strconv.FormatInt(now.UnixMilli(), 10)
		sep := "?"
		if parsed, err := url.Parse(u); err == nil && parsed.RawQuery != "" {
			sep = "&"
		}
		u += sep + "timestamp=" + ts + "&sign=" + url.QueryEscape(DingTalkSign(ts, d.Secret))
	}
	title := m.Title
	if title == "" {
		title = "cvmwatch"
	}
	return jsonRequest(ctx, u, map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": title, "text": m.Text}})
}

// DingTalkSign is the base64 HMAC-SHA256 keyed with secret over
// timestamp+"\n"+secret (before url-encoding).
func DingTalkSign(timestamp, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s\n%s", timestamp, secret)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Answer: errcode 0 is accepted; 130101 is throttling for 10 minutes.
func (*DingTalk) Answer(status int, h http.Header, body []byte) error {
	return errcodeAnswer(status, h, body, "errcode", "errmsg", map[int]time.Duration{DingTalkThrottled: dingTalkPenalty})
}
