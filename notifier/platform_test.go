package notifier

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestAnswerReadsThePlatformsCodeWhateverTheStatus: each platform's code
// decides, in a 2xx or not: a 2xx without one is not taken as accepted
// (something else answered), a throttle code inside a 4xx is throttling
// with the platform's wait, and a refusal carries its code.
func TestAnswerReadsThePlatformsCodeWhateverTheStatus(t *testing.T) {
	type want struct {
		accepted, temporary, throttled bool
		code                           int
		retryAfter                     time.Duration
	}
	for _, tc := range []struct {
		name   string
		p      Platform
		status int
		header http.Header
		body   string
		want   want
	}{
		{"wecom ok", &WeCom{}, 200, nil, `{"errcode":0,"errmsg":"ok"}`, want{accepted: true}},
		{"wecom 200 without errcode", &WeCom{}, 200, nil, `{"msg":"hello"}`, want{temporary: true}},
		{"wecom 200 not json", &WeCom{}, 200, nil, `<html>portal</html>`, want{temporary: true}},
		{"wecom refused in 200", &WeCom{}, 200, nil, `{"errcode":93000,"errmsg":"invalid webhook url"}`, want{code: 93000}},
		{"wecom throttled in 429", &WeCom{}, 429, nil, `{"errcode":45009,"errmsg":"api freq out of limit"}`,
			want{temporary: true, throttled: true, code: 45009, retryAfter: time.Minute}},
		{"wecom error code in 5xx", &WeCom{}, 502, nil, `{"errcode":-1,"errmsg":"system busy"}`, want{temporary: true, code: -1}},
		{"wecom 5xx without code", &WeCom{}, 503, nil, `busy`, want{temporary: true}},
		{"wecom code 0 in 5xx", &WeCom{}, 500, nil, `{"errcode":0}`, want{temporary: true}},
		{"dingtalk throttled in 400", &DingTalk{}, 400, nil, `{"errcode":130101,"errmsg":"send too fast"}`,
			want{temporary: true, throttled: true, code: 130101, retryAfter: 10 * time.Minute}},
		{"dingtalk too long in 400", &DingTalk{}, 400, nil, `{"errcode":460101,"errmsg":"message too long"}`, want{code: 460101}},
		{"feishu 200 without code", &Feishu{}, 200, nil, `{"StatusCode":0}`, want{temporary: true}},
		{"feishu bad sign in 400", &Feishu{}, 400, nil, `{"code":19021,"msg":"sign match fail"}`, want{code: 19021}},
		{"feishu throttled in 429, the longer wait kept", &Feishu{}, 429, http.Header{"Retry-After": {"30"}},
			`{"code":11232,"msg":"frequency limited"}`, want{temporary: true, throttled: true, code: 11232, retryAfter: 30 * time.Second}},
		{"feishu throttled in 429, its own wait", &Feishu{}, 429, http.Header{"Retry-After": {"1"}},
			`{"code":9499,"msg":"too many request"}`, want{temporary: true, throttled: true, code: 9499, retryAfter: 10 * time.Second}},
		{"slack ok", &Slack{}, 200, nil, `ok`, want{accepted: true}},
		{"slack rate limited, wait in the body", &Slack{}, 429, nil, `{"ok":false,"error":"rate_limited","retry_after":3}`,
			want{temporary: true, throttled: true, retryAfter: 3 * time.Second}},
		{"slack refused in 200", &Slack{}, 200, nil, `{"ok":false,"error":"invalid_payload"}`, want{}},
		{"slack refused as text", &Slack{}, 404, nil, `no_service`, want{}},
		{"webhook ok", &Webhook{}, 204, nil, ``, want{accepted: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			err := tc.p.Answer(tc.status, h, []byte(tc.body))
			if got := err == nil; got != tc.want.accepted {
				t.Fatalf("accepted = %v (err %v), want %v", got, err, tc.want.accepted)
			}
			if err == nil {
				return
			}
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("err %v is not a *Refusal", err)
			}
			got := want{temporary: r.Temporary, throttled: r.Throttled, code: r.Code, retryAfter: r.RetryAfter}
			if got != tc.want {
				t.Fatalf("refusal %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
}
