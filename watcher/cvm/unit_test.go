package cvm

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, host, scheme, err string
	}{
		{in: "127.0.0.1:9000", host: "127.0.0.1:9000", scheme: "HTTPS"},
		{in: "http://127.0.0.1:9000", host: "127.0.0.1:9000", scheme: "HTTP"},
		{in: "HTTP://127.0.0.1:9000/", host: "127.0.0.1:9000", scheme: "HTTP"},
		{in: "https://cvm.ap-guangzhou.tencentcloudapi.com", host: "cvm.ap-guangzhou.tencentcloudapi.com", scheme: "HTTPS"},
		{in: "ftp://x", err: "scheme must be http or https"},
		{in: "http://x/path", err: "only scheme, host and port"},
		{in: "http://u:p@x", err: "only scheme, host and port"},
		{in: "x/y", err: "want host[:port]"},
		{in: "http://", err: "want host[:port]"},
	}
	for _, tt := range tests {
		host, scheme, err := ParseEndpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseEndpoint(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || host != tt.host || scheme != tt.scheme {
			t.Errorf("ParseEndpoint(%q) = %q, %q, %v; want %q, %q", tt.in, host, scheme, err, tt.host, tt.scheme)
		}
	}
}

func TestClassifyCode(t *testing.T) {
	tests := map[string]class{
		"RequestLimitExceeded":                              classThrottle,
		"RequestLimitExceeded.UinLimitExceeded":             classThrottle,
		"RequestLimitExceeded.GlobalRegionUinLimitExceeded": classThrottle,
		"AuthFailure.SignatureFailure":                      classAuth,
		"AuthFailure.SignatureExpire":                       classAuth,
		"AuthFailure.SecretIdNotFound":                      classAuth,
		"AuthFailure.UnauthorizedOperation":                 classAuth,
		"UnauthorizedOperation.InvalidToken":                classAuth,
		"InternalError":                                     classRetry,
		"InternalServerError":                               classRetry,
		"ServiceUnavailable":                                classRetry,
		"ClientError.NetworkError":                          classRetry,
		"ClientError.HttpStatusCodeError":                   classRetry,
		"ClientError.ParseJsonError":                        classRetry,
		"InvalidParameterValue.LimitExceeded":               classReject,
		"InvalidInstanceId.Malformed":                       classReject,
		"InvalidAction":                                     classReject,
		"SomethingNew.NeverSeen":                            classReject,
		// A longer word that starts like a family is not of it.
		"RequestLimitExceededX":  classReject,
		"AuthFailureX.Something": classReject,
		"InternalErrorish":       classReject,
	}
	for code, want := range tests {
		if got := classifyCode(code); got != want {
			t.Errorf("classifyCode(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestAPIErrorMatchesSentinels(t *testing.T) {
	auth := &APIError{Action: "A", Code: "AuthFailure.SignatureFailure", class: classAuth}
	if !errors.Is(auth, watcher.ErrAuth) || errors.Is(auth, ErrThrottled) {
		t.Errorf("auth error sentinels wrong: Is(ErrAuth)=%v Is(ErrThrottled)=%v", errors.Is(auth, watcher.ErrAuth), errors.Is(auth, ErrThrottled))
	}
	thr := &APIError{Action: "A", Code: "RequestLimitExceeded", class: classThrottle}
	if !errors.Is(thr, ErrThrottled) || errors.Is(thr, watcher.ErrAuth) {
		t.Errorf("throttle error sentinels wrong")
	}
}

func TestLimiterHalvesOnThrottleAndRecovers(t *testing.T) {
	l := NewLimiter(40, 1)
	l.Throttled()
	if got, want := l.Rate(), 20.0; got != want {
		t.Fatalf("rate after one throttle = %v, want %v", got, want)
	}
	for range 100 {
		l.Throttled()
	}
	if got, want := l.Rate(), 0.5; got != want {
		t.Fatalf("rate after many throttles = %v, want floor %v", got, want)
	}
	for range 1000 {
		l.Succeeded()
	}
	if got, want := l.Rate(), 40.0; got != want {
		t.Fatalf("rate after successes = %v, want ceiling %v", got, want)
	}
}

func TestLimitersShareByKey(t *testing.T) {
	ls := NewLimiters(10, 1)
	if ls.Get("a/X") != ls.Get("a/X") {
		t.Fatal("same key gave two limiters")
	}
	if ls.Get("a/X") == ls.Get("b/X") {
		t.Fatal("different keys share a limiter")
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 100, MaxDelay: 1000}
	for n := 1; n <= 10; n++ {
		full := min(p.BaseDelay<<(n-1), p.MaxDelay)
		for range 50 {
			if d := p.backoff(n); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

type bodyTransport struct{ body string }

func (b bodyTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, ContentLength: -1, Body: io.NopCloser(strings.NewReader(b.body)), Header: http.Header{}}, nil
}

func TestCappedTransport(t *testing.T) {
	for _, tt := range []struct {
		size    int
		wantErr bool
	}{{size: 99}, {size: 100}, {size: 101, wantErr: true}, {size: 10000, wantErr: true}} {
		tr := &cappedTransport{next: bodyTransport{strings.Repeat("x", tt.size)}, max: 100}
		resp, err := tr.RoundTrip(&http.Request{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if gotErr := errors.Is(err, errResponseTooLarge); gotErr != tt.wantErr {
			t.Errorf("body of %d bytes: read error %v, want too-large=%v", tt.size, err, tt.wantErr)
		}
		if !tt.wantErr && len(b) != tt.size {
			t.Errorf("body of %d bytes: read %d", tt.size, len(b))
		}
	}
}
