package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// streamFirstTry bounds the attempt to set up the stream at start-up; after
// it the daemon starts regardless and the relay keeps trying.
const streamFirstTry = 5 * time.Second

// daemon is the wired product: store, NATS (embedded or remote), publisher,
// one scanner per target and the watcher. Open wires it, Run runs it, Close
// releases everything in reverse order.
type daemon struct {
	cfg     *Config
	metrics *metrics
	httpLn  net.Listener
	log     *slog.Logger
	// store is bbolt in data_dir, or with ha the journal store on the
	// cluster.
	store watcher.Store
	// ha shares the targets with the other replicas; nil without ha.
	ha       *haRunner
	embedded *publisher.Embedded
	nc       *nats.Conn
	// streams lists the JetStream streams as set up (nil in core mode).
	streams  func() []publisher.StreamStatus
	watcher  *watcher.Watcher
	limiters *cvm.Limiters
	// enrichLimiters pace DescribeInstances (enrich.rate_limit) and
	// refreshLimiters its background refresh (enrich.refresh_rate), per
	// cvm.QuotaKey.
	enrichLimiters, refreshLimiters *cvm.Limiters
	// actorLimiters pace LookUpEvents (enrich.actor_rate_limit).
	actorLimiters *cvm.Limiters
	accounts      []*account
	// notify is the chat notifier, when the config has a notify section.
	notify *notifyRunner
	// closers stop what the accounts started (credential refreshers).
	closers []func() error
}

// openDaemon wires a daemon from cfg. On error, whatever was opened is
// closed again.
func openDaemon(ctx context.Context, cfg *Config, log *slog.Logger) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	if !cfg.HA.Enabled {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
		// Through a variable of its own: a nil *store.Bolt in d.store
		// would be a non-nil watcher.Store that Close calls.
		bolt, err := store.Open(filepath.Join(cfg.DataDir, "cvmwatch.db"), store.Options{Check: true, Logger: log})
		if err != nil {
			return nil, err
		}
		d.store = bolt
	}

	urls := splitURLs(cfg.NATS.URL)
	if len(urls) == 0 {
		host, port, err := splitListen(cfg.NATS.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats.listen: %w", err)
		}
		// nats.token / nats.user+password protect the embedded server too:
		// the daemon and every subscriber must then give them.
		d.embedded, err = publisher.StartEmbedded(publisher.EmbeddedConfig{
			Host: host, Port: port, StoreDir: filepath.Join(cfg.DataDir, "nats"), SyncAlways: true, Logger: log,
			Token: cfg.NATS.Token.Reveal(), User: cfg.NATS.User, Password: cfg.NATS.Password.Reveal(),
		})
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		urls = []string{d.embedded.ClientURL()}
		log.Info("embedded NATS server with JetStream started", "url", d.embedded.ClientURL())
	}
	// The files the config names, checked as check-config checks them; here,
	// where the daemon runs, each must also be there.
	if errs, _ := cfg.checkFiles(cfg.allowInsecure, true); len(errs) > 0 {
		return nil, errs
	}
	d.nc, err = publisher.Connect(publisher.ConnConfig{
		URLs: urls, Name: "cvmwatch",
		Token: cfg.NATS.Token.Reveal(), User: cfg.NATS.User, Password: cfg.NATS.Password.Reveal(),
		CredsFile: cfg.NATS.CredsFile, NKeySeedFile: cfg.NATS.NKeySeedFile,
		CAFile: cfg.NATS.TLS.CAFile, CertFile: cfg.NATS.TLS.CertFile, KeyFile: cfg.NATS.TLS.KeyFile,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}

	d.metrics = newMetrics(d.nc)
	// Bind the metrics and health address now, so a conflict is a start-up
	// error, not a surprise later.
	if d.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}

	var pub watcher.Publisher
	if cfg.HA.Enabled {
		pub, err = d.openHA(ctx)
	} else {
		pub, err = d.publisher(ctx)
	}
	if err != nil {
		return nil, err
	}

	d.limiters = cvm.NewLimiters(cfg.Poll.RateLimit, 1)
	d.enrichLimiters = cvm.NewLimiters(cfg.Enrich.RateLimit, 1)
	d.refreshLimiters = cvm.NewLimiters(cfg.Enrich.RefreshRate, 1)
	d.actorLimiters = cvm.NewLimiters(cfg.Enrich.ActorRateLimit, 1)
	d.watcher, err = watcher.New(watcher.Config{
		Store: d.store, Publisher: pub, Policy: cfg.policy(), Interval: cfg.Poll.Interval.D(), Logger: log,
		Observer: d.metrics, Jitter: cfg.Poll.Jitter, MaxConcurrentScans: cfg.Poll.MaxConcurrentScans,
		Crash:         crashHook(os.Getenv(crashEnv)),
		EnrichTimeout: cfg.Enrich.Timeout.D(), EnrichRefresh: cfg.Enrich.Refresh.D(),
		ActorWait: cfg.Enrich.ActorWait.D(), ActorHorizon: cfg.Enrich.ActorHorizon.D(),
		HotInterval: cfg.Poll.HotInterval.D(),
	}, nil)
	if err != nil {
		return nil, err
	}
	if d.ha != nil {
		d.ha.w = d.watcher
	}
	for i, a := range cfg.Accounts {
		acct, err := d.wireAccount(ctx, i, a)
		if err != nil {
			return nil, err
		}
		d.accounts = append(d.accounts, acct)
		regions := []string(a.Regions)
		if a.Regions.All() {
			if regions, err = acct.regions.Resolve(ctx); err != nil {
				return nil, fmt.Errorf("accounts[%d] (%s): regions: all: %w", i, a.Name, err)
			}
			log.Info("regions resolved", "account", a.Name, "regions", regions)
		}
		for _, region := range regions {
			if err := d.addTarget(acct, region); err != nil {
				return nil, err
			}
		}
	}
	d.metrics.watchStatus(d.watcher.Status)
	if cfg.Notify.Enabled() {
		if d.notify, err = newNotifyRunner(cfg, d.nc, d.metrics.reg, log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// publisher returns the publisher of the configured mode. In JetStream mode
// it tries once to set up the stream; if the server is not reachable yet,
// the daemon starts all the same: scanning goes on, events wait in the
// outbox, and the relay sets the stream up once the server answers.
func (d *daemon) publisher(ctx context.Context) (watcher.Publisher, error) {
	n := d.cfg.NATS
	if n.Mode == "core" {
		return publisher.NewCore(d.nc, publisher.CoreConfig{Prefix: n.SubjectPrefix})
	}
	js, err := publisher.NewJetStreamContext(d.nc)
	if err != nil {
		return nil, err
	}
	pub, err := publisher.NewStreamReady(js, d.streamConfig(), publisher.JetStreamConfig{Prefix: n.SubjectPrefix})
	if err != nil {
		return nil, err
	}
	d.streams = pub.Streams
	sctx, cancel := context.WithTimeout(ctx, streamFirstTry)
	defer cancel()
	if err := pub.Ensure(sctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.log.Warn("nats not ready; scanning anyway, events wait in the outbox", "stream", n.Stream, "err", err)
	}
	return pub, nil
}

// streamConfig is the event and scans streams as the nats section (and,
// with ha, the epoch subjects) asks for them.
func (d *daemon) streamConfig() publisher.StreamConfig {
	n := d.cfg.NATS
	return publisher.StreamConfig{
		Name: n.Stream, Prefix: n.SubjectPrefix, MaxAge: n.MaxAge.D(), Duplicates: n.Duplicates.D(),
		Replicas: int(n.Replicas), ScanStream: n.scanStream(), ScanKeep: n.ScanKeep, ScanMaxAge: n.ScanMaxAge.D(),
		Epochs: d.cfg.HA.Enabled, Logger: d.log,
	}
}

// Run runs the watcher and the metrics and health endpoints until ctx is
// done.
func (d *daemon) Run(ctx context.Context) error {
	go d.refreshRegions(ctx)
	d.log.Info("cvmwatch running", "version", version, "targets", len(d.watcher.Targets()),
		"interval", d.cfg.Poll.Interval.D(), "stream", d.cfg.NATS.Stream, "replicas", d.cfg.NATS.Replicas.String(),
		"http", d.httpLn.Addr().String())
	handler := newHTTPHandler(d.watcher, d.metrics, d.store, time.Now, d.streams)
	if d.ha != nil {
		handler = d.ha.wrapStatus(handler)
		d.metrics.watchLeases(func() float64 { return float64(len(d.ha.Held())) })
	}
	notified := make(chan struct{})
	if d.notify != nil {
		go func() { defer close(notified); d.notify.Run(ctx) }()
		handler = d.notify.wrapReady(handler)
	} else {
		close(notified)
	}
	stopHTTP := serveHTTP(d.httpLn, handler)
	haDone := make(chan struct{})
	if d.ha != nil {
		go func() { defer close(haDone); d.ha.Run(ctx) }()
	} else {
		close(haDone)
	}
	err := d.watcher.Run(ctx)
	<-haDone
	<-notified
	if serr := stopHTTP(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// HTTPAddr is the address the metrics and health endpoints listen on.
func (d *daemon) HTTPAddr() string { return d.httpLn.Addr().String() }

// Close releases everything in reverse order of opening and returns the
// first error.
func (d *daemon) Close() error {
	var errs []error
	if d.nc != nil {
		// While NATS is unreachable there is nothing to drain: what was not
		// acknowledged stays in the outbox for the next run.
		if err := d.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) &&
			!errors.Is(err, nats.ErrConnectionReconnecting) {
			errs = append(errs, fmt.Errorf("nats drain: %w", err))
		}
		d.nc.Close()
	}
	if d.embedded != nil {
		d.embedded.Shutdown()
	}
	if d.httpLn != nil {
		d.httpLn.Close() // no-op once the server has closed it
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range d.closers {
		c()
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// policy turns the events section into the watcher's policy.
func (c *Config) policy() watcher.Policy {
	e := c.Events
	return watcher.Policy{
		AnnounceBaseline:   e.AnnounceBaseline,
		ConfirmScans:       e.ConfirmScans,
		MassFraction:       e.MassFraction,
		MassMinInstances:   e.MassMinInstances,
		MassConfirmScans:   e.MassConfirmScans,
		TombstoneRetention: e.TombstoneRetention.D(),
	}
}

func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if port == 0 {
		port = -1 // the server's "random port"
	}
	return host, port, nil
}
