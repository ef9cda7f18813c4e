package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Feishu posts to a Feishu/Lark (飞书) custom bot:
// POST https://open.feishu.cn/open-apis/bot/v2/hook/ID with an interactive
// card whose one element is markdown.
//
// With a Secret, the body carries "timestamp" (seconds, within an hour of
// Feishu's clock) and "sign": base64 of HMAC-SHA256 keyed with
// timestamp+"\n"+secret over an empty message.
//
// Limits: 100 requests a minute and 5 a second per bot, a request body of
// at most 20 KB; throttling is code 11232 (and 9499 "too many request" has
// been seen; both are taken as throttling). The documentation does not say
// how long to wait: a throttled message waits at least 10 seconds
// (UNVERIFIED; chosen conservatively).
type Feishu struct {
	URL    string
	Secret string
}

var _ Platform = (*Feishu)(nil)

// Feishu's error codes.
const (
	FeishuThrottled     = 11232
	FeishuTooManyReqs   = 9499
	FeishuSignFailed    = 19021
	feishuThrottledWait = 10 * time.Second
)

// Limits: 100 a minute (which also keeps within 5 a second); a body of 20
// KB, taken as 20000 bytes, the text aiming at 18000.
func (*Feishu) Limits() Limits { return Limits{Every: perMinute(100), MaxBytes: 18000, MaxBody: 20000} }

// Style is markdown (of a card).
func (*Feishu) Style() Style { return StyleMarkdown }

func (*Feishu) String() string { return "feishu" }

// Request posts m as a card, signed at now when there is a secret.
func (f *Feishu) Request(ctx context.Context, m Message, now time.Time) (*http.Request, error) {
	title := m.Title
	if title == "" {
		title = "cvmwatch"
	}
	body := map[string]any{
		"msg_type": "interactive",
		"card": map[string]any{
			"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": title}},
			"elements": []any{map[string]string{"tag": "markdown", "content": m.Text}},
		},
	}
	if f.Secret != "" {
		ts := strconv.FormatInt(now.Unix(), 10)
		body["timestamp"], body["sign"] = ts, FeishuSign(ts, f.Secret)
	}
	return jsonRequest(ctx, f.URL, body)
}

// FeishuSign is base64 of HMAC-SHA256 keyed with timestamp+"\n"+secret over
// an empty message.
func FeishuSign(timestamp, secret string) string {
	mac := hmac.New(sha256.New, []byte(timestamp+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Answer: code 0 is accepted; 11232 and 9499 are throttling.
func (*Feishu) Answer(status int, h http.Header, body []byte) error {
	return errcodeAnswer(status, h, body, "code", "msg",
		map[int]time.Duration{FeishuThrottled: feishuThrottledWait, FeishuTooManyReqs: feishuThrottledWait})
}
