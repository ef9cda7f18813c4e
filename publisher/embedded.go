package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults of EmbeddedConfig.
const (
	DefaultEmbeddedHost = "127.0.0.1"
	DefaultEmbeddedPort = 4222
	// EmbeddedServerName is the server name of the embedded server (and of
	// its JetStream node).
	EmbeddedServerName = "cvmwatch"
)

// embeddedReadyTimeout bounds how long StartEmbedded waits for the server to
// accept clients.
const embeddedReadyTimeout = 10 * time.Second

// EmbeddedConfig configures the in-process NATS server that cvmwatch runs when
// no NATS URL is configured.
type EmbeddedConfig struct {
	// Host to listen on; default 127.0.0.1 (loopback only: subscribers on the
	// same machine can connect, nobody else can).
	Host string
	// Port to listen on; 0 means 4222, -1 picks a free port (tests).
	Port int
	// StoreDir is where JetStream keeps its streams. Required.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before acknowledging it,
	// so an ack means durable even across an OS crash or power loss; it is
	// what production should run (cvmwatch's configuration defaults it to
	// true). It costs throughput: on a 2-core machine async publishing drops
	// from ~200-300 k msg/s to ~7 k msg/s, sync publishing to ~1.4-5 k msg/s
	// (docs/nats-notes.md). Without it JetStream acks after writing to the
	// OS and fsyncs every 2 minutes: a process kill loses nothing, an OS
	// crash can lose acknowledged messages.
	SyncAlways bool
	// Token, or User and Password, require clients to authenticate. Empty:
	// no authentication (fine on loopback). Never logged.
	Token    string
	User     string
	Password string
	// Logger receives the server's own log lines (notices and debug at
	// debug level, warnings at warn, errors at error). Nil: discarded.
	Logger *slog.Logger
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv      *server.Server
	shutdown sync.Once
}

// StartEmbedded starts a NATS server with JetStream (file storage under
// cfg.StoreDir) in this process and returns once it accepts clients. It
// never installs signal handlers. It fails with an error naming the address
// when the port cannot be bound (for example, already in use) and when the
// server is not ready within 10 seconds; the caller need not shut it down
// then.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir is required")
	}
	if cfg.Token != "" && (cfg.User != "" || cfg.Password != "") {
		return nil, errors.New("embedded nats: token and user/password are exclusive")
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, errors.New("embedded nats: user and password go together")
	}
	if cfg.Host == "" {
		cfg.Host = DefaultEmbeddedHost
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultEmbeddedPort
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	opts := &server.Options{
		ServerName:    EmbeddedServerName,
		Host:          cfg.Host,
		Port:          cfg.Port,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		SyncAlways:    cfg.SyncAlways,
		NoSigs:        true,
		NoLog:         true,
		Authorization: cfg.Token,
		Username:      cfg.User,
		Password:      cfg.Password,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats on %s: %w", addr, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sl := &serverLogger{log: logger.With("component", "nats-server"), fatal: make(chan string, 1)}
	srv.SetLogger(sl, false, false)

	go srv.Start()

	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(embeddedReadyTimeout) }()
	select {
	case ok := <-ready:
		if ok {
			return &Embedded{srv: srv}, nil
		}
		stop(srv)
		return nil, fmt.Errorf("embedded nats on %s: not ready for connections after %s", addr, embeddedReadyTimeout)
	case msg := <-sl.fatal:
		// Start gave up (port in use, unusable store dir, ...); the message
		// is the server's own and holds no secret.
		stop(srv)
		return nil, fmt.Errorf("embedded nats on %s: %s", addr, msg)
	}
}

// ClientURL returns the URL clients connect to, such as
// "nats://127.0.0.1:4222" (never with credentials).
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Server returns the underlying server, for what this type does not wrap
// (monitoring, in-process connections).
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped, JetStream state
// flushed to disk. It is safe to call more than once and concurrently.
func (e *Embedded) Shutdown() {
	e.shutdown.Do(func() { stop(e.srv) })
}

func stop(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// serverLogger routes the server's log lines to slog and reports fatal ones
// (after which Start gives up) on a channel instead of exiting the process.
type serverLogger struct {
	log   *slog.Logger
	fatal chan string
}

func (l *serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v...) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v...) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v...) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v...) }
func (l *serverLogger) Tracef(string, ...any)           {}

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}

func (l *serverLogger) logf(level slog.Level, format string, v ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}
