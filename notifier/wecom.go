package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// WeCom posts to a WeCom (企业微信) group robot:
// POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY with
// {"msgtype":"markdown","markdown":{"content":...}}. The key in the URL is
// the only secret.
//
// Limits (developer.work.weixin.qq.com/document/path/91770): markdown
// content at most 4096 bytes of UTF-8, at most 20 messages a minute per
// robot. The error code of a robot over its rate is not documented for
// robots; 45009 ("api freq out of limit") is WeCom's rate error elsewhere
// and is taken as throttling (UNVERIFIED for robots), with a wait of a
// minute.
type WeCom struct {
	// URL is the robot's webhook URL, key included.
	URL string
}

var _ Platform = (*WeCom)(nil)

// WeComThrottled is WeCom's "api freq out of limit".
const WeComThrottled = 45009

// Limits: 20 a minute, 4096 bytes.
func (*WeCom) Limits() Limits { return Limits{Every: perMinute(20), MaxBytes: 4096} }

// Style is WeCom's markdown.
func (*WeCom) Style() Style { return StyleWeCom }

func (*WeCom) String() string { return "wecom" }

// Request posts m as markdown.
func (w *WeCom) Request(ctx context.Context, m Message, _ time.Time) (*http.Request, error) {
	body := map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": m.Text}}
	return jsonRequest(ctx, w.URL, body)
}

// Answer: errcode 0 is accepted; 45009 is throttling, in any status.
func (*WeCom) Answer(status int, h http.Header, body []byte) error {
	return errcodeAnswer(status, h, body, "errcode", "errmsg", map[int]time.Duration{WeComThrottled: time.Minute})
}

// jsonRequest is a POST of body as JSON to url. Its errors never hold the
// URL, which holds the secret of most webhooks.
func jsonRequest(ctx context.Context, url string, body any) (*http.Request, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // markup such as <font> stays as written
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &b)
	if err != nil {
		return nil, fmt.Errorf("webhook url is not valid") // the URL is secret
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// errcodeAnswer judges the answer of a platform that reports in a JSON
// body ({codeKey: N, msgKey: "..."}) by that code, whatever the HTTP
// status: code 0 in a 2xx is accepted; a code in throttle is throttling,
// waiting the longer of its wait and Retry-After; another code is a
// refusal, temporary when the status is (5xx, 408, 429), else for good. A
// 2xx without a readable code is not an acceptance (something other than
// the platform answered): a temporary refusal. A non-2xx without a code,
// or with code 0, is judged by its status.
func errcodeAnswer(status int, h http.Header, body []byte, codeKey, msgKey string, throttle map[int]time.Duration) error {
	byStatus := httpRefusal(status, h, body)
	var ans map[string]json.RawMessage
	var code int
	raw, has := []byte(nil), false
	if json.Unmarshal(body, &ans) == nil {
		raw, has = ans[codeKey]
	}
	if has && json.Unmarshal(raw, &code) != nil {
		has = false
	}
	switch {
	case (!has || code == 0) && byStatus != nil:
		return byStatus
	case !has:
		return &Refusal{Status: status, Msg: "answer has no " + codeKey + ": " + snippet(body), Temporary: true}
	case code == 0:
		return nil
	}
	var msg string
	_ = json.Unmarshal(ans[msgKey], &msg)
	r := &Refusal{Status: status, Code: code, Msg: truncateUTF8(msg, 200)}
	if byStatus != nil {
		r.Throttled, r.Temporary, r.RetryAfter = byStatus.Throttled, byStatus.Temporary, byStatus.RetryAfter
	}
	if wait, ok := throttle[code]; ok {
		r.Throttled, r.Temporary, r.RetryAfter = true, true, max(wait, r.RetryAfter)
	}
	return r
}
