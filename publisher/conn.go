package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of ConnConfig.
const (
	DefaultConnName         = "cvmwatch"
	DefaultReconnectBufSize = 8 << 20
	DefaultConnectTimeout   = 5 * time.Second
	DefaultReconnectWait    = 2 * time.Second
)

// Keep-alive: a dead TCP connection is noticed after about
// pingInterval*maxPingsOut (1 minute) instead of nats.go's 4 minutes.
const (
	pingInterval = 20 * time.Second
	maxPingsOut  = 3
	// reconnectWarnEvery: failed reconnect attempts are logged at debug,
	// except the first and every this many (about once a minute).
	reconnectWarnEvery = 30
)

// ConnConfig configures a client connection to NATS. At most one of
// CredsFile, NKeySeedFile, Token and User/Password may be set. Secrets are
// never logged nor put into errors.
type ConnConfig struct {
	// URLs of the servers to try, such as "nats://host:4222" or
	// "tls://host:4222". Credentials in a URL work but are redacted from
	// every log line and error.
	URLs []string
	// Name is the connection name the server shows; default "cvmwatch".
	Name string
	// CAFile verifies the server's certificate (TLS); CertFile and KeyFile,
	// both or neither, present a client certificate. Any of them turns TLS on.
	CAFile, CertFile, KeyFile string
	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string
	// NKeySeedFile holds a user nkey seed ("SU...").
	NKeySeedFile string
	// Token authenticates with a bearer token.
	Token string
	// User and Password authenticate with a user name and password.
	User, Password string
	// ReconnectBufSize bounds, in bytes, what is buffered while reconnecting
	// (0: 8 MiB; negative: nothing is buffered and publishes fail at once).
	// A publish past the bound fails instead of growing memory.
	ReconnectBufSize int
	// ConnectTimeout bounds one connection attempt (dial and handshake);
	// default 5s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between two rounds of reconnect attempts;
	// default 2s. Half of it more is added at random (jitter) so that many
	// clients do not reconnect in step.
	ReconnectWait time.Duration
}

// Connect connects to NATS and keeps the connection up for as long as the
// process runs: it reconnects forever (MaxReconnects(-1)) with jittered
// waits, buffering at most ReconnectBufSize bytes meanwhile, and logs
// disconnects, reconnects and asynchronous errors to logger (warn/info),
// with URLs redacted and no secret.
//
// When a server answers but refuses the connection (bad credentials, TLS
// mismatch, unreadable creds or key file) Connect returns an error. When no
// server is reachable yet, Connect does not fail: it logs a warning and
// returns a connection that keeps retrying in the background
// (RetryOnFailedConnect) and reports nats.RECONNECTING until a server comes
// up; publishes made meanwhile are buffered (within ReconnectBufSize) or
// fail, and a JetStream publisher reports them as not acked.
func Connect(cfg ConnConfig, logger *slog.Logger) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("nats connect: no server url")
	}
	redacted := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		redacted[i] = Redact(u)
	}
	logger = logger.With("servers", strings.Join(redacted, ","))
	secrets := cfg.secrets()

	opts, err := cfg.options(logger, secrets)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", scrub(err, secrets))
	}

	// First a plain attempt: a server that answers and refuses us is a
	// configuration error to report now, not to retry forever.
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err == nil {
		return nc, nil // the connect handler has logged it
	}
	if !unreachable(err) {
		return nil, fmt.Errorf("nats connect to %s: %w", strings.Join(redacted, ","), scrub(err, secrets))
	}
	logger.Warn("nats not reachable, retrying in the background", "err", scrub(err, secrets))
	nc, err = nats.Connect(strings.Join(cfg.URLs, ","), append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("nats connect to %s: %w", strings.Join(redacted, ","), scrub(err, secrets))
	}
	return nc, nil
}

// unreachable reports whether a connect error means no server answered, as
// opposed to a server that refused the client.
func unreachable(err error) bool {
	if errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	s := err.Error()
	for _, frag := range []string{"connection refused", "i/o timeout", "no such host", "network is unreachable", "connection reset"} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

// options turns the configuration into nats.go options, checking that the
// authentication methods do not conflict.
func (cfg ConnConfig) options(logger *slog.Logger, secrets []string) ([]nats.Option, error) {
	auth := 0
	for _, set := range []bool{cfg.CredsFile != "", cfg.NKeySeedFile != "", cfg.Token != "", cfg.User != "" || cfg.Password != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, errors.New("creds file, nkey seed file, token and user/password are exclusive")
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, errors.New("password without user")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("client cert file and key file go together")
	}
	name := cfg.Name
	if name == "" {
		name = DefaultConnName
	}
	bufSize := cfg.ReconnectBufSize
	switch {
	case bufSize == 0:
		bufSize = DefaultReconnectBufSize
	case bufSize < 0:
		bufSize = -1
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	wait := cfg.ReconnectWait
	if wait <= 0 {
		wait = DefaultReconnectWait
	}
	var failed atomic.Int64 // reconnect attempts failed since the last success
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(wait/2, wait/2),
		nats.ReconnectBufSize(bufSize),
		nats.Timeout(timeout),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		// A server that keeps refusing our credentials is retried too: they
		// may be fixed on the server side without restarting cvmwatch.
		nats.IgnoreAuthErrorAbort(),
		nats.ConnectHandler(func(nc *nats.Conn) {
			failed.Store(0)
			logger.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", scrub(err, secrets))
			} else {
				logger.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			failed.Store(0)
			logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// One line a minute or so during an outage, not one per attempt.
			n := failed.Add(1)
			level := slog.LevelDebug
			if n == 1 || n%reconnectWarnEvery == 0 {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "nats reconnect attempt failed", "attempts", n, "err", scrub(err, secrets))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				logger.Warn("nats connection closed", "err", scrub(err, secrets))
				return
			}
			logger.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Warn("nats async error", "subject", sub.Subject, "err", scrub(err, secrets))
				return
			}
			logger.Warn("nats async error", "err", scrub(err, secrets))
		}),
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", cfg.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	return opts, nil
}

// secrets lists the values that must never appear in an error.
func (cfg ConnConfig) secrets() []string {
	var s []string
	for _, v := range []string{cfg.Token, cfg.Password} {
		if v != "" {
			s = append(s, v)
		}
	}
	for _, raw := range cfg.URLs {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				s = append(s, p)
			} else if n := u.User.Username(); n != "" {
				s = append(s, n) // nats://TOKEN@host
			}
		}
	}
	return s
}

// scrub replaces every secret in err's text with "REDACTED", keeping err in
// the chain for errors.Is.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "REDACTED")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }

// Is lets errors.Is see the sentinels of the scrubbed error (they carry no
// secret) without exposing the error itself through Unwrap.
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }

// Redact returns a server URL (or a comma-separated list of them) fit for a
// log line: the password, or a token given as user name, is replaced by
// "REDACTED". A URL that does not parse is reduced to its scheme and host
// when possible, and to "REDACTED" when not.
func Redact(raw string) string {
	if strings.Contains(raw, ",") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = Redact(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "REDACTED@" + raw[i+1:]
		}
		if strings.ContainsAny(raw, ":/") {
			return "REDACTED"
		}
		return raw
	}
	if u.User == nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			// "user:pass@host:4222" without a scheme parses as an opaque URL.
			return "REDACTED@" + raw[i+1:]
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	} else {
		u.User = url.User("REDACTED")
	}
	return u.String()
}
