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
	switch a {
	case ActionDescribeInstancesStatus, ActionDescribeInstances, ActionAssumeRole, ActionDescribeRegions, ActionLookUpEvents:
		return true
	}
	return false
}

// versionOf is the API version of a served action.
func versionOf(action string) string {
	switch action {
	case ActionAssumeRole:
		return STSVersion
	case ActionDescribeRegions:
		return RegionAPIVersion
	case ActionLookUpEvents:
		return AuditVersion
	}
	return APIVersion
}

// serviceOf is the credential scope service of a served action.
func serviceOf(action string) string {
	switch action {
	case ActionAssumeRole:
		return stsService
	case ActionDescribeRegions:
		return regionService
	case ActionLookUpEvents:
		return auditService
	}
	return tc3Service
}

// reply is the answer to one API request, decided before it is sent.
type reply struct {
	status      int
	contentType string
	body        []byte
	code        string        // error code answered, for the log
	note        string        // how the request ended, for the log
	delay       time.Duration // latency faults, added to the configured latency
	hang        bool          // FaultTimeout: never answer
	drop        bool          // nothing can be answered (unreadable body)
}

func jsonReply(body []byte, note string) reply {
	return reply{status: http.StatusOK, contentType: "application/json", body: body, note: note}
}

func errorReply(e *apiError, rid string) reply {
	r := jsonReply(encodeError(e, rid), "error")
	r.code = e.Code
	return r
}

// serveAPI answers one API 3.0 request: it decides the reply (see the
// package documentation for the order of checks), waits the configured
// latency plus latency faults, and sends it. A request whose client gives up,
// or that is still waiting when the server closes, gets no answer.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := newRequestID()
	action := r.Header.Get("X-TC-Action")
	s.mu.Lock()
	s.stats.arrive(action, start)
	s.mu.Unlock()

	rep := s.process(w, r, rid)
	s.mu.Lock()
	delay := rep.delay + s.latencyLocked()
	s.mu.Unlock()
	switch {
	case rep.drop:
	case !s.wait(r.Context(), delay):
		rep.note = "abandoned during latency"
	case rep.hang:
		s.wait(r.Context(), -1)
	default:
		writeRaw(w, rep.status, rep.contentType, rep.body)
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
		slog.String("action", clip(action)),
		slog.String("region", clip(r.Header.Get("X-TC-Region"))),
		slog.String("code", rep.code),
		slog.String("status", rep.note),
		slog.String("requestId", rid),
		slog.Duration("took", time.Since(start)))
}

// process decides the reply to one API request.
func (s *Server) process(w http.ResponseWriter, r *http.Request, rid string) reply {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return errorReply(errorf(CodeUnsupportedProtocol, "Only GET and POST requests are supported."), rid)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorReply(errorf(CodeRequestSizeLimitExceeded, "The request body exceeds 10 MB."), rid)
		}
		return reply{drop: true, note: "unreadable body"}
	}
	env, secretID, aerr := s.admit(r, body)
	if aerr != nil {
		return errorReply(aerr, rid)
	}
	if env.action == ActionAssumeRole {
		return s.serveAssumeRole(r, body, rid)
	}
	if env.action == ActionDescribeRegions {
		return s.serveDescribeRegions(r, body, rid)
	}
	m := faultMatch{action: env.action, region: env.region}
	var perr *apiError
	var answer func() []byte // the success body, under s.mu
	if env.action == ActionLookUpEvents {
		var p auditParams
		p, perr = parseAuditParams(r, body)
		if perr == nil {
			perr = validateAudit(&p)
		}
		answer = func() []byte {
			pg := s.lookUpLocked(p, s.now())
			s.fireLocked(m, false, func(f Fault) bool { return applyAuditFault(&pg, f) },
				FaultNullFields, FaultLyingTotal, FaultDuplicate, FaultHostileValues)
			return encodeAuditPage(pg, rid)
		}
	} else {
		var p params
		p, perr = parseParams(r, body, env.action)
		if perr == nil {
			perr = validate(&p)
		}
		if p.hasOffset {
			m.offset = p.offset
		}
		answer = func() []byte { return encodePage(env.action, s.describeLocked(env, p, m), rid) }
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var injected *apiError
	s.fireLocked(m, true, func(f Fault) bool {
		injected = injectedError(f.Code, env.action)
		return true
	}, FaultError)
	if injected != nil {
		return errorReply(injected, rid)
	}
	if !s.quota.allow(env.action, secretID, time.Now()) {
		s.stats.throttled++
		return errorReply(errorf(CodeRequestLimitExceeded, "The request rate of `"+env.action+"` exceeds the frequency limit. Please reduce the frequency of calls."), rid)
	}
	var delay time.Duration
	s.fireLocked(m, false, func(f Fault) bool {
		delay += time.Duration(f.Delay)
		return true
	}, FaultLatency)
	rep, transport := s.transportFaultLocked(m, rid)
	rep.delay = delay
	if transport {
		return rep
	}
	if perr != nil {
		rep = errorReply(perr, rid)
	} else {
		rep = jsonReply(answer(), "ok")
	}
	rep.delay = delay
	s.fireLocked(m, true, func(Fault) bool {
		rep.body = rep.body[:len(rep.body)/2]
		rep.note = "truncated fault"
		return true
	}, FaultTruncated)
	return rep
}

// injectedError is the error an error fault answers: for
// AuthFailure.UnauthorizedOperation the message names the CAM action denied,
// as the real one does.
func injectedError(code, action string) *apiError {
	if code == CodeAuthUnauthorizedOperation {
		return errorf(code, "you are not authorized to perform operation ("+serviceOf(action)+":"+clip(action)+
			")\nresource (qcs::"+serviceOf(action)+":::*) has no permission (injected by cvmsim).")
	}
	return errorf(code, "Injected by cvmsim.")
}

// admit checks the common parameters, the signature, the action, the
// version and the region, and returns the envelope and the SecretId.
func (s *Server) admit(r *http.Request, body []byte) (envelope, string, *apiError) {
	env, aerr := parseEnvelope(r)
	if aerr != nil {
		return env, "", aerr
	}
	secretID, aerr := s.authenticate(r, body, env, s.now())
	if aerr != nil {
		s.mu.Lock()
		s.stats.authFailures++
		s.mu.Unlock()
		return env, "", aerr
	}
	switch {
	case !isServedAction(env.action):
		return env, "", errorf(CodeInvalidAction, "The action `"+clip(env.action)+"` is not supported by cvm version "+APIVersion+".")
	case env.version != versionOf(env.action):
		return env, "", errorf(CodeNoSuchVersion, "The API version `"+clip(env.version)+"` does not exist; use "+versionOf(env.action)+".")
	case env.action == ActionDescribeRegions:
		// The Region API is global: X-TC-Region is optional.
	case env.region == "":
		return env, "", errorf(CodeMissingParameter, "The request is missing a required parameter `Region` (header X-TC-Region).")
	case !s.regions[env.region] && !isTencentRegion(env.region):
		return env, "", errorf(CodeUnsupportedRegion, "The region `"+clip(env.region)+"` is not supported.")
	}
	return env, secretID, nil
}

// transportFaultLocked fires the first matching transport fault and returns
// its reply; ok is false if none fired.
func (s *Server) transportFaultLocked(m faultMatch, rid string) (rep reply, ok bool) {
	s.fireLocked(m, true, func(f Fault) bool {
		ok = true
		switch f.Kind {
		case FaultTimeout:
			rep = reply{hang: true, note: "timeout fault"}
		case FaultHTML502:
			rep = reply{status: http.StatusBadGateway, contentType: "text/html", body: []byte(badGatewayHTML), note: "html-502 fault"}
		case FaultNonJSON:
			rep = reply{status: http.StatusOK, contentType: "text/plain; charset=utf-8",
				body: []byte("upstream connect error or disconnect/reset before headers\n"), note: "non-json fault"}
		case FaultEmptyObject:
			rep = jsonReply([]byte("{}"), "empty-object fault")
		case FaultEmptyResponse:
			rep = jsonReply(encodeEmptyResponse(rid), "empty-response fault")
		}
		return true
	}, FaultTimeout, FaultHTML502, FaultNonJSON, FaultEmptyObject, FaultEmptyResponse)
	return rep, ok
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
