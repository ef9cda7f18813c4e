package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/notifier"
	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// notifyAckWaitEnv names the test-only environment variable (a Go
// duration) that shortens the consumer's ack wait, so that the fault suite
// sees the events of a SIGKILLed notifier redelivered within a second
// rather than notifier.DefaultAckWait. It is not a configuration key and is
// not documented for users.
const notifyAckWaitEnv = "CVMWATCH_TEST_NOTIFY_ACK_WAIT"

// notifyRunner is the notifier wired from the config: routes, one sender
// per sink, the pipeline, and (once NATS answers) the durable consumer and
// the sent-events bucket. It runs inside `cvmwatch run` or on its own.
type notifyRunner struct {
	cfg      NotifyConfig
	nats     NATSConfig
	js       jetstream.JetStream
	log      *slog.Logger
	metrics  *notifier.Metrics
	router   *notifier.Router
	senders  map[string]*notifier.Sender
	ackWait  time.Duration // 0: the consumer's default
	mu       sync.Mutex
	notReady string // why it is not running, for /readyz; "" when it runs
}

// newNotifyRunner wires the notifier on nc, registering its metrics with
// reg. It connects to nothing yet.
func newNotifyRunner(cfg *Config, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*notifyRunner, error) {
	routes, err := cfg.Notify.routes()
	if err != nil {
		return nil, err
	}
	router, err := notifier.NewRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("notify: jetstream: %w", err)
	}
	r := &notifyRunner{cfg: cfg.Notify, nats: cfg.NATS, js: js, log: log.With("component", "notify"),
		metrics: notifier.NewMetrics(reg), router: router, senders: map[string]*notifier.Sender{},
		notReady: "not started"}
	if v := os.Getenv(notifyAckWaitEnv); v != "" {
		if r.ackWait, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("%s: %w", notifyAckWaitEnv, err)
		}
	}
	for _, s := range cfg.Notify.Sinks {
		r.senders[s.Name] = notifier.NewSender(s.Name, s.platform(), notifier.SenderOptions{
			GiveUpAfter: cfg.Notify.GiveUpAfter.D(), Logger: r.log, Metrics: r.metrics})
	}
	return r, nil
}

// Run sets up the sent-events bucket and the consumer (retrying while NATS
// or the stream is not there yet) and notifies until ctx ends. A consumer
// that stops (deleted under it, a failed lookup in the bucket, a closed
// connection) is set up again with backoff, /readyz saying why meanwhile;
// the pipeline and the events in it carry on. It returns once the pipeline
// has stopped.
func (r *notifyRunner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var piped sync.WaitGroup
	defer piped.Wait()
	defer cancel()
	var sent *notifier.KVSent
	var p *notifier.Pipeline
	for n := 1; ; n++ {
		var err error
		if sent == nil {
			var choice publisher.ReplicaChoice
			sent, choice, err = notifier.OpenKVSent(ctx, r.js, "cvmwatch_notify_"+r.cfg.Durable, r.cfg.DedupeHorizon.D(), int(r.nats.Replicas))
			if err == nil {
				r.log.Info("notify: sent-events bucket ready", "replicas", choice.Replicas, "why", choice.Reason)
			}
		}
		if err == nil && p == nil {
			p, err = notifier.NewPipeline(notifier.PipelineConfig{Router: r.router, Senders: r.senders, Sent: sent,
				MaxAge: r.cfg.MaxAge.D(), Logger: r.log, Metrics: r.metrics})
			if err != nil {
				return err
			}
			piped.Add(1)
			go func() { defer piped.Done(); p.Run(ctx) }()
		}
		var cons *notifier.Consumer
		if err == nil {
			cons, err = notifier.NewConsumer(ctx, r.js, notifier.ConsumerConfig{
				Stream: r.nats.Stream, Durable: r.cfg.Durable, Filter: r.router.Filter(r.nats.SubjectPrefix),
				AckWait: r.ackWait, StartBack: r.cfg.MaxAge.D(), Logger: r.log, Metrics: r.metrics})
		}
		if err != nil {
			r.setNotReady("consumer not set up: " + err.Error())
			r.log.Warn("notifier cannot start yet; retrying", "err", err)
		} else {
			r.setNotReady("")
			r.log.Info("notifier running", "consumer", r.cfg.Durable, "routes", len(r.router.Routes()), "sinks", len(r.senders))
			started := time.Now()
			err = cons.Run(ctx, p)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("its messages ended")
			}
			if time.Since(started) > time.Minute {
				n = 1 // it ran: back off from the start again
			}
			r.setNotReady("consumer stopped: " + err.Error())
			r.log.Warn("notifier consumer stopped; setting it up again", "err", err)
		}
		if err := watcher.Sleep(ctx, watcher.Backoff(n, time.Second, 30*time.Second)); err != nil {
			return nil
		}
	}
}

func (r *notifyRunner) setNotReady(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notReady = why
}

// notReadyReason is why the notifier is not running; "" when it runs.
func (r *notifyRunner) notReadyReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notReady
}

// wrapReady adds the notifier to handler's /readyz: a "notify" entry with
// its reason, and 503 while it does not run.
func (r *notifyRunner) wrapReady(handler http.Handler) http.Handler {
	return amendJSON(handler, []string{"/readyz"}, func(body map[string]any, code int) int {
		why := r.notReadyReason()
		entry := map[string]any{"ready": why == ""}
		if why != "" {
			entry["reason"] = why
			code, body["status"] = http.StatusServiceUnavailable, "not ready"
		}
		body["notify"] = entry
		return code
	})
}

// serve runs the notifier on its own until ctx ends, serving on ln what
// the daemon serves: /metrics from reg, /healthz, and /readyz with the
// notifier's entry (it has no targets of its own).
func (r *notifyRunner) serve(ctx context.Context, ln net.Listener, reg prometheus.Gatherer) error {
	mux := newBaseMux(reg)
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]any{"status": "ready"})
	})
	r.log.Info("notifier serving", "http", ln.Addr().String())
	stopHTTP := serveHTTP(ln, r.wrapReady(mux))
	err := r.Run(ctx)
	if serr := stopHTTP(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// notifyURLs are the servers the notifier reads from: nats.url, or the
// embedded server of a daemon on this machine (nats.listen).
func notifyURLs(cfg *Config) []string {
	if urls := splitURLs(cfg.NATS.URL); len(urls) > 0 {
		return urls
	}
	return []string{"nats://" + cfg.NATS.Listen}
}

func newNotifyCommand() *cobra.Command {
	var path string
	var insecure, dryRun bool
	var since time.Duration
	c := &cobra.Command{
		Use:   "notify --config FILE",
		Short: "Tell chat rooms about the events of the stream (the notify section)",
		Long: `Read the event stream with a durable consumer and post grouped messages to the
chat rooms of the notify section (WeCom, DingTalk, Feishu/Lark, Slack, a signed
webhook), within each platform's limits. An event is acknowledged once every
message that includes it was accepted or given up; a restart resumes and
repeats nothing. "cvmwatch run" does the same when its config has a notify
section; run this instead to notify from another machine. It serves
/metrics, /healthz and /readyz on http.listen, as "cvmwatch run" does.

--dry-run sends nothing: it prints which route each event of the last --since
would take, and the messages it would make.`,
		Example: `  cvmwatch notify --config /etc/cvmwatch/cvmwatch.yaml
  cvmwatch notify --config cvmwatch.yaml --dry-run --since 2h`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := LoadConfig(path, insecure)
			if err != nil {
				return err
			}
			if !cfg.Notify.Enabled() {
				return fmt.Errorf("config %s: notify.routes: no routes, nothing to notify", path)
			}
			log := newLogger(c.ErrOrStderr(), cfg.Log)
			nc, err := publisher.Connect(publisher.ConnConfig{
				URLs: notifyURLs(cfg), Name: "cvmwatch-notify",
				Token: cfg.NATS.Token.Reveal(), User: cfg.NATS.User, Password: cfg.NATS.Password.Reveal(),
				CredsFile: cfg.NATS.CredsFile, NKeySeedFile: cfg.NATS.NKeySeedFile,
				CAFile: cfg.NATS.TLS.CAFile, CertFile: cfg.NATS.TLS.CertFile, KeyFile: cfg.NATS.TLS.KeyFile,
			}, log)
			if err != nil {
				return fmt.Errorf("nats: %w", err)
			}
			defer nc.Close()
			reg := prometheus.NewRegistry()
			r, err := newNotifyRunner(cfg, nc, reg, log)
			if err != nil {
				return err
			}
			if dryRun {
				return r.dryRun(c.Context(), time.Now(), since, c.OutOrStdout())
			}
			ln, err := net.Listen("tcp", cfg.HTTP.Listen)
			if err != nil {
				return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
			}
			registerProcessMetrics(reg, nc)
			return r.serve(c.Context(), ln, reg)
		},
	}
	c.Flags().StringVar(&path, "config", "", "configuration file (YAML)")
	c.Flags().BoolVar(&insecure, "allow-insecure-permissions", false, "accept a config or credentials file with secrets that others can read")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the route and message of each recent event; send nothing")
	c.Flags().DurationVar(&since, "since", time.Hour, "with --dry-run: the events of this long ago up to now")
	c.MarkFlagRequired("config")
	return c
}

// dryRun prints, for each state event stored in the since before now, the
// route it takes, then the message each route would send to each of its
// sinks: one per route and sink for the whole period (the running notifier
// cuts them by group_wait and group_max). It reads only those events: the
// server skips the older ones.
func (r *notifyRunner) dryRun(ctx context.Context, now time.Time, since time.Duration, out io.Writer) error {
	msgs, err := publisher.ReadSince(ctx, r.js, r.nats.Stream, r.router.Filter(r.nats.SubjectPrefix), now.Add(-since))
	if err != nil {
		return err
	}
	byRoute := map[*notifier.Route][]notifier.Event{}
	var order []*notifier.Route
	n := 0
	for _, m := range msgs {
		e, err := notifier.DecodeEvent(m.Data)
		if err != nil {
			fmt.Fprintf(out, "#%d %s: undecodable: %v\n", m.Seq, m.Subject, err)
			continue
		}
		n++
		routes, dropped := r.router.Route(e)
		var names []string
		for _, rt := range routes {
			names = append(names, rt.Name)
			if byRoute[rt] == nil {
				order = append(order, rt)
			}
			byRoute[rt] = append(byRoute[rt], e)
		}
		verdict := "no route"
		switch {
		case dropped != "" && len(names) == 0:
			verdict = "dropped by " + dropped
		case dropped != "":
			verdict = "route " + strings.Join(names, ", ") + ", then dropped by " + dropped
		case len(names) > 0:
			verdict = "route " + strings.Join(names, ", ")
		}
		fmt.Fprintf(out, "#%d %s %s %s -> %s: %s\n", m.Seq, e.ObservedAt.UTC().Format(time.DateTime), e.Label(), e.From, e.To, verdict)
	}
	fmt.Fprintf(out, "%d events in the last %v\n", n, since)
	for _, rt := range order {
		events := byRoute[rt]
		stale := time.Since(events[len(events)-1].ObservedAt) > r.cfg.MaxAge.D()
		for _, sink := range rt.Sinks {
			p := r.senders[sink].Platform()
			m, err := notifier.Render(rt, p.Style(), p.Limits().MaxBytes, events, stale)
			if err != nil {
				return err
			}
			parts, err := notifier.Parts(ctx, p, m, time.Now())
			if err != nil {
				return err
			}
			for i, part := range parts {
				fmt.Fprintf(out, "\n--- route %s -> sink %s (%s), part %d of %d ---\n%s\n", rt.Name, sink, p, i+1, len(parts), part)
			}
		}
	}
	return nil
}
