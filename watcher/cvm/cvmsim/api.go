package cvmsim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// tencentRegions are the region names of the cvm SDK. A request for one the
// server does not serve is answered like an account with no instances there.
func isTencentRegion(r string) bool {
	switch r {
	case "ap-bangkok", "ap-beijing", "ap-chengdu", "ap-chongqing", "ap-guangzhou", "ap-hongkong",
		"ap-jakarta", "ap-mumbai", "ap-nanjing", "ap-seoul", "ap-shanghai", "ap-shanghai-fsi",
		"ap-shenzhen-fsi", "ap-singapore", "ap-tokyo", "eu-frankfurt", "eu-moscow", "na-ashburn",
		"na-siliconvalley", "na-toronto", "sa-saopaulo":
		return true
	}
	return false
}

func isServedAction(a string) bool {
	return a == ActionDescribeInstancesStatus || a == ActionDescribeInstances
}

// serveAPI answers one API 3.0 request. See the package documentation for
// the order of checks.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := newRequestID()
	action := r.Header.Get("X-TC-Action")
	s.mu.Lock()
	s.stats.arrive(action, start)
	s.mu.Unlock()

	code, status := s.handleAPI(w, r, rid)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
		slog.String("action", clip(action)),
		slog.String("region", clip(r.Header.Get("X-TC-Region"))),
		slog.String("code", code),
		slog.String("status", status),
		slog.String("requestId", rid),
		slog.Duration("took", time.Since(start)))
}

// handleAPI runs the pipeline and returns the error code answered ("" for
// success) and how the request ended, for the log.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request, rid string) (code, status string) {
	fail := func(e *apiError) (string, string) {
		writeJSON(w, encodeError(e, rid))
		return e.Code, "error"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return fail(errorf(CodeUnsupportedProtocol, "Only GET and POST requests are supported."))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(errorf(CodeRequestSizeLimitExceeded, "The request body exceeds 10 MB."))
		}
		return "", "unreadable body"
	}
	env, aerr := parseEnvelope(r)
	if aerr != nil {
		return fail(aerr)
	}
	secretID, aerr := s.authenticate(r, body, env, s.now())
	if aerr != nil {
		s.mu.Lock()
		s.stats.authFailures++
		s.mu.Unlock()
		return fail(aerr)
	}
	if !isServedAction(env.action) {
		return fail(errorf(CodeInvalidAction, "The action `"+clip(env.action)+"` is not supported by cvm version "+APIVersion+"."))
	}
	if env.version != APIVersion {
		return fail(errorf(CodeNoSuchVersion, "The API version `"+clip(env.version)+"` does not exist; use "+APIVersion+"."))
	}
	if env.region == "" {
		return fail(errorf(CodeMissingParameter, "The request is missing a required parameter `Region` (header X-TC-Region)."))
	}
	if _, served := s.regions[env.region]; !served && !isTencentRegion(env.region) {
		return fail(errorf(CodeUnsupportedRegion, "The region `"+clip(env.region)+"` is not supported."))
	}
	p, perr := parseParams(r, body, env.action)
	if perr == nil {
		perr = validate(&p)
	}
	m := faultMatch{action: env.action, region: env.region}
	if p.hasOffset {
		m.offset = p.offset
	}

	var injected *apiError
	var delay time.Duration
	s.mu.Lock()
	s.fireLocked(m, true, func(f Fault) bool {
		injected = errorf(f.Code, "Injected by cvmsim.")
		return true
	}, FaultError)
	if injected == nil && !s.quota.allow(env.action, secretID, time.Now()) {
		s.stats.throttled++
		injected = errorf(CodeRequestLimitExceeded, "The request rate of `"+env.action+"` exceeds the frequency limit. Please reduce the frequency of calls.")
	}
	if injected == nil {
		delay = s.latencyLocked()
		s.fireLocked(m, false, func(f Fault) bool {
			delay += time.Duration(f.Delay)
			return true
		}, FaultLatency)
	}
	s.mu.Unlock()
	if injected != nil {
		return fail(injected)
	}
	if !s.wait(r.Context(), delay) {
		return "", "abandoned during latency"
	}

	var transport FaultKind
	s.mu.Lock()
	s.fireLocked(m, true, func(f Fault) bool {
		transport = f.Kind
		return true
	}, FaultTimeout, FaultHTML502, FaultNonJSON, FaultEmptyObject, FaultEmptyResponse)
	s.mu.Unlock()
	switch transport {
	case FaultTimeout:
		s.wait(r.Context(), -1)
		return "", "timeout fault"
	case FaultHTML502:
		writeRaw(w, http.StatusBadGateway, "text/html", []byte(badGatewayHTML))
		return "", "html-502 fault"
	case FaultNonJSON:
		writeRaw(w, http.StatusOK, "text/plain; charset=utf-8", []byte("upstream connect error or disconnect/reset before headers\n"))
		return "", "non-json fault"
	case FaultEmptyObject:
		writeJSON(w, []byte("{}"))
		return "", "empty-object fault"
	case FaultEmptyResponse:
		writeJSON(w, encodeEmptyResponse(rid))
		return "", "empty-response fault"
	}

	var out []byte
	if perr != nil {
		code, status = perr.Code, "error"
		out = encodeError(perr, rid)
	} else {
		s.mu.Lock()
		pg := s.describeLocked(env, p, m)
		s.mu.Unlock()
		out = encodePage(env.action, pg, rid)
		status = "ok"
	}
	s.mu.Lock()
	s.fireLocked(m, true, func(Fault) bool {
		out = out[:len(out)/2]
		return true
	}, FaultTruncated)
	s.mu.Unlock()
	writeJSON(w, out)
	return code, status
}

const badGatewayHTML = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// latencyLocked draws the configured per-request latency.
func (s *Server) latencyLocked() time.Duration {
	d := s.opts.Latency
	if j := s.opts.LatencyJitter; j > 0 {
		d += time.Duration(s.rngJitter.Int64N(int64(j)))
	}
	return d
}

// wait sleeps for d (forever if d < 0) and reports whether it slept the whole
// time: false if the request was abandoned or the server closed first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		return true
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}
