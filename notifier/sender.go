package notifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Defaults of SenderOptions.
const (
	DefaultGiveUpAfter = time.Hour
	DefaultHTTPTimeout = 10 * time.Second
	retryBase          = time.Second
	retryCeiling       = 5 * time.Minute
	maxAnswerBytes     = 64 << 10
)

// SenderOptions tune a Sender.
type SenderOptions struct {
	// Client posts the requests; default one with a 10 s timeout that
	// follows no redirect (a redirected POST becomes a GET, whose 200 would
	// count a message as accepted that no one took): a 3xx answer is a
	// refusal.
	Client *http.Client
	// GiveUpAfter bounds the retries of one message: a message not accepted
	// this long after its first try is given up. Default 1 h.
	GiveUpAfter time.Duration
	Logger      *slog.Logger
	Metrics     *Metrics
}

// Sender posts messages to one webhook, within its platform's limits: one
// message at a time, no closer together than Limits().Every, split as
// Parts says (Limits().MaxBytes, or the encoded body's Limits().MaxBody),
// retried with backoff (watcher.Backoff, 1 s doubling to 5 min) that waits at least what the platform asked (Retry-After, a
// throttle code's wait). A Sender is used by one goroutine at a time.
type Sender struct {
	name     string
	platform Platform
	opts     SenderOptions
	lim      *rate.Limiter
	log      *slog.Logger
	metrics  *Metrics
}

// NewSender returns the sender of the sink name (used in logs and metrics)
// on platform p.
func NewSender(name string, p Platform, o SenderOptions) *Sender {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = DefaultGiveUpAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = newDiscardMetrics()
	}
	return &Sender{name: name, platform: p, opts: o, log: o.Logger.With("sink", name), metrics: o.Metrics,
		lim: rate.NewLimiter(rate.Every(p.Limits().Every), 1)}
}

// Name is the sink's name.
func (s *Sender) Name() string { return s.name }

// Platform is the sender's platform.
func (s *Sender) Platform() Platform { return s.platform }

// Send posts m, in as many parts as its size needs. It returns nil once the
// platform accepted every part; an error wrapping ErrGiveUp when a part was
// refused for good or not accepted within GiveUpAfter (the parts after it
// are not sent); ctx's error when ctx ended first (the message is then
// neither sent nor given up, and must be tried again).
func (s *Sender) Send(ctx context.Context, m Message) error {
	parts, err := Parts(ctx, s.platform, m, time.Now())
	if err != nil {
		s.metrics.MessagesDropped.WithLabelValues(s.name).Inc()
		return fmt.Errorf("sink %s: %w: %w", s.name, ErrGiveUp, err)
	}
	for i, text := range parts {
		part := m
		part.Text = text
		if err := s.post(ctx, part); err != nil {
			if errors.Is(err, ErrGiveUp) {
				s.metrics.MessagesDropped.WithLabelValues(s.name).Inc()
				return fmt.Errorf("sink %s: part %d of %d: %w", s.name, i+1, len(parts), err)
			}
			return err
		}
		s.metrics.MessagesSent.WithLabelValues(s.name).Inc()
	}
	return nil
}

// post posts one part, retrying until accepted, given up or ctx ends.
func (s *Sender) post(ctx context.Context, m Message) error {
	first := time.Now()
	for n := 1; ; n++ {
		if err := s.lim.Wait(ctx); err != nil {
			return ctxErr(ctx, err)
		}
		err := s.try(ctx, m)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var r *Refusal
		wait := watcher.Backoff(n, retryBase, retryCeiling)
		if errors.As(err, &r) {
			if !r.Temporary {
				s.log.Error("message refused; given up", "err", err)
				return fmt.Errorf("%w: %w", ErrGiveUp, err)
			}
			if r.Throttled {
				s.metrics.Throttled.WithLabelValues(s.name).Inc()
			}
			wait = max(wait, r.RetryAfter)
		}
		if time.Since(first)+wait > s.opts.GiveUpAfter {
			s.log.Error("message not accepted in time; given up", "after", time.Since(first).Round(time.Second), "err", err)
			return fmt.Errorf("%w after %d tries: %w", ErrGiveUp, n, err)
		}
		s.log.Warn("message not accepted; retrying", "try", n, "wait", wait.Round(time.Millisecond), "err", err)
		s.metrics.Retried.WithLabelValues(s.name).Inc()
		if err := watcher.Sleep(ctx, wait); err != nil {
			return err
		}
		// The wait counts as the platform's interval too: a throttled
		// webhook is not sent a burst after it.
		s.lim.Reserve()
	}
}

// try makes one request.
func (s *Sender) try(ctx context.Context, m Message) error {
	req, err := s.platform.Request(ctx, m, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGiveUp, err)
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read answer: %w", redactURLError(err))
	}
	return s.platform.Answer(resp.StatusCode, resp.Header, scrubAnswer(body, req.URL))
}

// scrubAnswer removes the request URL's secrets from an answer before it
// can reach an error or a log: a proxy or a receiver that echoes the
// request would otherwise show the webhook's secret (a Slack hook's path, a
// WeCom key, a DingTalk access token). It replaces the query, the path, and
// each query value and path segment of 8 or more bytes on its own.
func scrubAnswer(body []byte, u *url.URL) []byte {
	secrets := []string{u.RawQuery, u.EscapedPath(), u.Path}
	for _, vs := range u.Query() {
		secrets = append(secrets, vs...)
	}
	secrets = append(secrets, strings.Split(u.Path, "/")...)
	for _, secret := range secrets {
		if len(secret) >= 8 {
			body = bytes.ReplaceAll(body, []byte(secret), []byte("[redacted]"))
		}
	}
	return body
}

// redactURLError drops the URL (which holds the webhook's secret) from the
// errors of http.Client.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
