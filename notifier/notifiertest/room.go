// Package notifiertest holds fake chat rooms, one per platform the notifier
// posts to, for tests: like net/http/httptest, a Room is an http.Handler
// that behaves as the platform documents, verifies signatures with an
// implementation of its own (not the notifier's), enforces the platform's
// rate and size limits with its error codes, and records every message it
// accepted. It imports nothing of the project.
package notifiertest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Kind names a platform.
type Kind string

// The platforms.
const (
	WeCom    Kind = "wecom"
	DingTalk Kind = "dingtalk"
	Feishu   Kind = "feishu"
	Slack    Kind = "slack"
	Webhook  Kind = "webhook"
)

// Posted is one message a room accepted.
type Posted struct {
	Time  time.Time
	Title string
	// Text is the message's text (markdown content, card markdown, Slack
	// text, the webhook's text).
	Text string
	// Events are the generic webhook's events, as sent.
	Events []json.RawMessage
}

// Options shape a room; the zero value is the platform's documented limits.
type Options struct {
	// Secret is the signing secret (DingTalk, Feishu, webhook); empty: the
	// room checks no signature and refuses a signed request it cannot check.
	Secret string
	// PerMinute and PerSecond override the platform's rate limits (0: the
	// platform's); MaxBytes its size limit.
	PerMinute, PerSecond, MaxBytes int
	// Now is the room's clock; default time.Now.
	Now func() time.Time
	// Hold, if set, sees the body of each request before the room decides
	// on it, outside the room's lock, and may block: a platform slow to
	// answer. When it returns false the room drops the request: nothing is
	// accepted and the connection is closed without an answer.
	Hold func(body []byte) bool
	// Accepted, if set, is called with each message the room accepted,
	// once its answer was sent (flushed to the client).
	Accepted func(Posted)
}

// Room is a fake chat room of one platform. It is safe for concurrent use.
type Room struct {
	kind Kind
	opts Options

	mu        sync.Mutex
	posted    []Posted
	accepted  []time.Time // for the rate limits
	penalty   time.Time   // DingTalk: throttled until
	down      int         // answer 503 while > 0 (or forever if < 0)
	throttled int
	refused   []string
	requests  int
}

// NewRoom returns a room of kind with the platform's limits.
func NewRoom(kind Kind, o Options) *Room {
	if o.Now == nil {
		o.Now = time.Now
	}
	def := map[Kind][3]int{ // per minute, per second, bytes
		WeCom: {20, 0, 4096}, DingTalk: {20, 0, 20000}, Feishu: {100, 5, 20 << 10},
		Slack: {0, 1, 40000}, Webhook: {0, 0, 4 << 20},
	}[kind]
	if o.PerMinute == 0 {
		o.PerMinute = def[0]
	}
	if o.PerSecond == 0 {
		o.PerSecond = def[1]
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = def[2]
	}
	return &Room{kind: kind, opts: o}
}

// Server serves the room on a loopback port until the test ends; its URL
// (any path) is the webhook's URL.
func (r *Room) Server(tb interface{ Cleanup(func()) }) *httptest.Server {
	s := httptest.NewServer(r)
	tb.Cleanup(s.Close)
	return s
}

// Client is an http.Client that hands its requests to the room in
// process, without a network (for testing/synctest bubbles).
func (r *Room) Client() *http.Client {
	return &http.Client{Transport: roundTripper{r}}
}

type roundTripper struct{ h http.Handler }

func (t roundTripper) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			resp, err = nil, io.ErrUnexpectedEOF // a dropped request (Options.Hold)
		}
	}()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// Messages returns a copy of the messages accepted so far, in order.
func (r *Room) Messages() []Posted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Posted(nil), r.posted...)
}

// Throttled is how many requests the room answered with its throttle
// answer; Requests how many it received in all.
func (r *Room) Throttled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.throttled
}

// Requests is how many requests the room received.
func (r *Room) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Refused lists why the room refused requests other than for rate (bad
// signature, too long, malformed), in order.
func (r *Room) Refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.refused...)
}

// SetDown makes the room answer HTTP 503 to the next n requests (n < 0:
// until SetDown(0)).
func (r *Room) SetDown(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = n
}

// MaxInWindow is the most messages the room accepted within any window of
// length d.
func (r *Room) MaxInWindow(d time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	most := 0
	for i, t := range r.accepted {
		n := 0
		for _, u := range r.accepted[i:] {
			if u.Sub(t) >= d {
				break
			}
			n++
		}
		most = max(most, n)
	}
	return most
}

// ServeHTTP answers one webhook request as the platform would.
func (r *Room) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err == nil && r.opts.Hold != nil && !r.opts.Hold(body) {
		r.mu.Lock()
		r.requests++
		r.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	if p, ok := r.serve(w, req, body, err); ok && r.opts.Accepted != nil {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		r.opts.Accepted(p)
	}
}

// serve answers the request whose body was read (or failed with err) and
// reports whether it accepted p.
func (r *Room) serve(w http.ResponseWriter, req *http.Request, body []byte, err error) (Posted, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	now := r.opts.Now()
	if err != nil || req.Method != http.MethodPost {
		r.refuse(w, "bad request", http.StatusBadRequest, 0)
		return Posted{}, false
	}
	if r.down != 0 {
		if r.down > 0 {
			r.down--
		}
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return Posted{}, false
	}
	p, code, why := r.decode(req, body, now)
	if why != "" {
		r.refuse(w, why, http.StatusOK, code)
		return Posted{}, false
	}
	if len(p.Text) > r.opts.MaxBytes || (r.kind != WeCom && len(body) > r.opts.MaxBytes) {
		code := map[Kind]int{WeCom: 40058, DingTalk: 460101, Feishu: 19036}[r.kind]
		r.refuse(w, fmt.Sprintf("too long: %d bytes", len(p.Text)), http.StatusBadRequest, code)
		return Posted{}, false
	}
	if r.overRate(now) {
		r.throttle(w, now)
		return Posted{}, false
	}
	r.accepted = append(r.accepted, now)
	p.Time = now
	r.posted = append(r.posted, p)
	r.ok(w)
	return p, true
}

// overRate reports whether one more message now would exceed a limit.
func (r *Room) overRate(now time.Time) bool {
	if now.Before(r.penalty) {
		return true
	}
	count := func(d time.Duration) int {
		n := 0
		for i := len(r.accepted) - 1; i >= 0 && now.Sub(r.accepted[i]) < d; i-- {
			n++
		}
		return n
	}
	return (r.opts.PerMinute > 0 && count(time.Minute) >= r.opts.PerMinute) ||
		(r.opts.PerSecond > 0 && count(time.Second) >= r.opts.PerSecond)
}

// throttle answers as the platform does when a robot sends too fast.
func (r *Room) throttle(w http.ResponseWriter, now time.Time) {
	r.throttled++
	switch r.kind {
	case WeCom:
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 45009, "errmsg": "api freq out of limit"})
	case DingTalk:
		r.penalty = now.Add(10 * time.Minute)
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
	case Feishu:
		writeJSON(w, http.StatusOK, map[string]any{"code": 11232, "msg": "frequency limited"})
	default:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "rate_limited", "retry_after": 1})
	}
}

func (r *Room) ok(w http.ResponseWriter) {
	switch r.kind {
	case WeCom, DingTalk:
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 0, "errmsg": "ok"})
	case Feishu:
		writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "success"})
	default:
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok")
	}
}

// refuse answers a request the platform would not accept.
func (r *Room) refuse(w http.ResponseWriter, why string, status, code int) {
	r.refused = append(r.refused, why)
	switch r.kind {
	case WeCom, DingTalk:
		writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": why})
	case Feishu:
		writeJSON(w, http.StatusOK, map[string]any{"code": code, "msg": why})
	default:
		http.Error(w, why, max(status, http.StatusBadRequest))
	}
}

// decode reads the platform's body and checks its signature. why is
// non-empty when the request is refused, with the platform's code.
func (r *Room) decode(req *http.Request, body []byte, now time.Time) (p Posted, code int, why string) {
	switch r.kind {
	case WeCom:
		var b struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		if json.Unmarshal(body, &b) != nil || b.MsgType != "markdown" {
			return p, 40008, "invalid message type"
		}
		return Posted{Text: b.Markdown.Content}, 0, ""
	case DingTalk:
		if r.opts.Secret != "" {
			ts, sign := req.URL.Query().Get("timestamp"), req.URL.Query().Get("sign")
			if !within(ts, 1000, now) {
				return p, 310000, "timestamp missing or more than an hour off"
			}
			mac := hmac.New(sha256.New, []byte(r.opts.Secret))
			mac.Write([]byte(ts + "\n" + r.opts.Secret))
			if !hmac.Equal([]byte(sign), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
				return p, 310000, "sign not match"
			}
		}
		var b struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Title string `json:"title"`
				Text  string `json:"text"`
			} `json:"markdown"`
		}
		if json.Unmarshal(body, &b) != nil || b.MsgType != "markdown" || b.Markdown.Title == "" {
			return p, 40035, "missing markdown title or text"
		}
		return Posted{Title: b.Markdown.Title, Text: b.Markdown.Text}, 0, ""
	case Feishu:
		var b struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Card      struct {
				Header struct {
					Title struct {
						Content string `json:"content"`
					} `json:"title"`
				} `json:"header"`
				Elements []struct {
					Tag     string `json:"tag"`
					Content string `json:"content"`
				} `json:"elements"`
			} `json:"card"`
		}
		if json.Unmarshal(body, &b) != nil || b.MsgType != "interactive" || len(b.Card.Elements) != 1 {
			return p, 9499, "bad request"
		}
		if r.opts.Secret != "" {
			mac := hmac.New(sha256.New, []byte(b.Timestamp+"\n"+r.opts.Secret))
			if !within(b.Timestamp, 1, now) || !hmac.Equal([]byte(b.Sign), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
				return p, 19021, "sign match fail or timestamp is not within one hour from current time"
			}
		}
		return Posted{Title: b.Card.Header.Title.Content, Text: b.Card.Elements[0].Content}, 0, ""
	case Slack:
		var b struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(body, &b) != nil || b.Text == "" {
			return p, 0, "invalid_payload"
		}
		return Posted{Text: b.Text}, 0, ""
	default: // Webhook
		if r.opts.Secret != "" {
			ts := req.Header.Get("X-Cvmwatch-Timestamp")
			mac := hmac.New(sha256.New, []byte(r.opts.Secret))
			mac.Write([]byte(ts + "."))
			mac.Write(body)
			want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
			if !within(ts, 1, now) || !hmac.Equal([]byte(req.Header.Get("X-Cvmwatch-Signature")), []byte(want)) {
				return p, 0, "bad signature"
			}
		}
		var b struct {
			Title  string            `json:"title"`
			Text   string            `json:"text"`
			Events []json.RawMessage `json:"events"`
		}
		if json.Unmarshal(body, &b) != nil {
			return p, 0, "body is not JSON"
		}
		return Posted{Title: b.Title, Text: b.Text, Events: b.Events}, 0, ""
	}
}

// within reports whether ts, an integer count of 1/perSecond seconds
// (1000: milliseconds, 1: seconds), is within an hour of now.
func within(ts string, perSecond int64, now time.Time) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	t := time.Unix(n/perSecond, n%perSecond*int64(time.Second)/perSecond)
	d := now.Sub(t)
	return d < time.Hour && d > -time.Hour
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
