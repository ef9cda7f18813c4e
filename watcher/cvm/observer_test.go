package cvm_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// codeRecorder is a cvm.Observer that keeps every request's code.
type codeRecorder struct {
	mu    sync.Mutex
	codes []string
}

func (r *codeRecorder) Request(_, _, code string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, code)
}

func (r *codeRecorder) Progress(watcher.Target, int, int) {}

func (r *codeRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.codes...)
}

// labelShape is what the Observer contract promises a code looks like.
var labelShape = regexp.MustCompile(`^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$`)

// TestRequestCodeIsABoundedLabel sends error codes through the official SDK
// and checks what the observer, and so the metrics, receive: a code of
// Tencent's shape as given, anything else as one fixed value.
func TestRequestCodeIsABoundedLabel(t *testing.T) {
	const invalid = "ClientError.InvalidCode"
	tests := []struct {
		name, code, want string
	}{
		{name: "throttling code kept", code: "RequestLimitExceeded", want: "RequestLimitExceeded"},
		{name: "dotted code kept", code: "InvalidParameterValue.Limit", want: "InvalidParameterValue.Limit"},
		{name: "auth code kept", code: "AuthFailure.SignatureFailure", want: "AuthFailure.SignatureFailure"},
		{name: "64 bytes kept", code: strings.Repeat("A", 64), want: strings.Repeat("A", 64)},
		{name: "65 bytes replaced", code: strings.Repeat("A", 65), want: invalid},
		{name: "200 bytes of good tokens replaced", code: "InternalError." + strings.Repeat("x", 186), want: invalid},
		{name: "space replaced", code: "Internal Error", want: invalid},
		{name: "newline replaced", code: "InternalError\nfake_metric 1", want: invalid},
		{name: "NUL replaced", code: "Internal\x00Error", want: invalid},
		{name: "label syntax replaced", code: `X{code="y"}`, want: invalid},
		{name: "accented letters replaced", code: "InternalError.Ünïcödé", want: invalid},
		{name: "CJK replaced", code: "内部错误", want: invalid},
		{name: "empty token replaced", code: "InternalError..Busy", want: invalid},
		{name: "leading dot replaced", code: ".InternalError", want: invalid},
		{name: "trailing dot replaced", code: "InternalError.", want: invalid},
		{name: "hyphen replaced", code: "Internal-Error", want: invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 5})
			srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: tt.code, Count: 1})
			rec := &codeRecorder{}
			s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 2, observer: rec})
			s.Scan(t.Context())
			codes := rec.all()
			if len(codes) == 0 {
				t.Fatal("observer heard of no request")
			}
			if got := codes[0]; got != tt.want {
				t.Errorf("code of the answer %q = %q, want %q", tt.code, got, tt.want)
			}
			for _, c := range codes {
				if c != "OK" && (len(c) > 64 || !labelShape.MatchString(c)) {
					t.Errorf("observer got code %q, not a bounded label", c)
				}
			}
		})
	}
}

// TestErrorTextBoundsTheCode: an error answer's code is the server's string;
// the error the scan returns, which is logged, must not carry all of it.
func TestErrorTextBoundsTheCode(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{InstancesPerRegion: 5})
	huge := "InvalidParameter." + strings.Repeat("x", 10_000)
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Code: huge})
	s, _ := mustNewScanner(t, srv, scannerOptions{attempts: 1})
	_, err := s.Scan(t.Context())
	if err == nil {
		t.Fatal("scan answered with an error code succeeded")
	}
	if got, limit := len(err.Error()), 1000; got > limit {
		t.Fatalf("error text is %d bytes, want at most %d: the code was not bounded", got, limit)
	}
	if !strings.Contains(err.Error(), "InvalidParameter.xxx") {
		t.Errorf("error %q lost the start of the code", err)
	}
}
