package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

type demoFlags struct {
	sim        simFlags
	interval   time.Duration
	duration   time.Duration
	dataDir    string
	natsListen string
	verbose    bool
}

func newDemoCommand() *cobra.Command {
	var f demoFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Watch a simulated fleet change state: simulator + embedded NATS + watcher",
		Long: `Run the whole product with no cloud account: the CVM simulator with a churning
fleet, an embedded NATS server with JetStream, and the watcher, which scans the
fleet through the official Tencent SDK and publishes every transition. The
events are printed as a subscriber receives them from NATS.
Stops on Ctrl-C or after --duration.`,
		Example: `  cvmwatch demo
  cvmwatch demo --instances 2000 --churn 5 --duration 1m
  cvmwatch demo --nats-listen 127.0.0.1:4222   # then: nats sub 'cvm.state.>'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.interval < time.Second/10 {
				return usageError{fmt.Errorf("--interval: %v is shorter than 100ms", f.interval)}
			}
			ctx := c.Context()
			if f.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, f.duration)
				defer cancel()
			}
			f.sim.listen = "127.0.0.1:0"
			return runDemo(ctx, f, c.OutOrStdout())
		},
	}
	f.sim.addFleetFlags(c, 50, 1, 0.2)
	c.Flags().DurationVar(&f.interval, "interval", 2*time.Second, "time between scans")
	c.Flags().DurationVar(&f.duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "keep the snapshot and the stream here (default: a temporary directory, removed at the end)")
	c.Flags().StringVar(&f.natsListen, "nats-listen", "127.0.0.1:0", "address of the embedded NATS server (port 0: any free port)")
	c.Flags().BoolVar(&f.verbose, "verbose", false, "show the watcher's logs")
	return c
}

func runDemo(ctx context.Context, f demoFlags, out io.Writer) error {
	opts, err := f.sim.options()
	if err != nil {
		return err
	}
	if err := checkLoopback(f.natsListen, false); err != nil {
		return usageError{fmt.Errorf("--nats-listen: %w", err)}
	}
	srv, err := cvmsim.NewServer(opts)
	if err != nil {
		return fmt.Errorf("demo: simulator: %w", err)
	}
	defer srv.Close()

	dir := f.dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cvmwatch-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	room, roomURL := startDemoRoom(out)
	defer room.Close()
	cfg := &Config{
		DataDir: dir,
		Accounts: []AccountConfig{{
			Name: "demo", Regions: f.sim.regions, Endpoint: srv.URL(),
			Credentials: &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey},
		}},
		Poll: PollConfig{Interval: Duration(f.interval)},
		NATS: NATSConfig{Listen: f.natsListen},
		HTTP: HTTPConfig{Listen: "127.0.0.1:0"},
		// The simulator serves LookUpEvents too: show who did it, holding
		// events little (late actors come as follow-ups).
		Enrich: EnrichConfig{Actor: true, ActorWait: Duration(2 * time.Second)},
		Notify: NotifyConfig{
			Sinks:  []SinkConfig{{Name: "demo-room", Type: "dingtalk", URL: Secret(roomURL), Secret: demoRoomSecret}},
			Routes: []RouteConfig{{Name: "all", Sinks: []string{"demo-room"}, GroupWait: Duration(5 * time.Second)}},
		},
	}
	cfg.applyDefaults()
	if problems := cfg.validate(); len(problems) > 0 {
		return problems
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))

	d, err := openDaemon(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(out, "simulated CVM API: %s (%d instances per region, %.1f lifecycle operations/s)\n",
		srv.URL(), f.sim.instances, f.sim.churn)
	fmt.Fprintf(out, "NATS with JetStream: %s  (try: nats --server %s sub 'cvm.>')\n", d.nc.ConnectedUrlRedacted(), d.nc.ConnectedUrlRedacted())
	fmt.Fprintf(out, "metrics and health: http://%s/metrics  /readyz\n", d.HTTPAddr())
	fmt.Fprintf(out, "chat notifier: a fake DingTalk room at %s prints what it is sent (grouped every 5s)\n", room.URL)
	fmt.Fprintf(out, "scanning every %v; the first scan is a silent baseline, then every change is an event:\n\n", f.interval)

	p := &printer{out: out, seen: map[string]bool{}}
	sub, err := d.nc.Subscribe(cfg.NATS.SubjectPrefix+".>", p.print)
	if err != nil {
		return fmt.Errorf("demo: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	return d.Run(ctx)
}

// printer prints events and scan summaries as a person reads them. NATS
// calls it from one goroutine per subscription.
type printer struct {
	out  io.Writer
	seen map[string]bool // targets whose first summary was printed
}

func (p *printer) print(m *nats.Msg) {
	now := time.Now().Format("15:04:05")
	if strings.Contains(m.Subject, ".scan.") {
		var s publisher.ScanMessage
		if err := json.Unmarshal(m.Data, &s); err != nil {
			return
		}
		target := s.Account + "/" + s.Region
		switch {
		case !s.Complete:
			fmt.Fprintf(p.out, "%s  %-22s scan incomplete (%d of its pages failed): no absence inferred\n", now, target, s.PagesFailed)
		case !p.seen[target]:
			p.seen[target] = true
			fmt.Fprintf(p.out, "%s  %-22s %d instances known, %d requests in %dms\n", now, target, s.Instances, s.Requests, s.DurationMs)
		}
		return
	}
	e, err := watcher.UnmarshalCloudEvent(m.Data)
	if err != nil {
		fmt.Fprintf(p.out, "undecodable event on %s: %v\n", m.Subject, err)
		return
	}
	if e.IsOperation() {
		fmt.Fprintf(p.out, "%s  %-22s %s  %-30s op   %s\n", e.ObservedAt.Local().Format("15:04:05"),
			e.Target.String(), e.InstanceID, string(e.To)+" (no change)",
			strings.TrimSpace(identity(e.Instance)+"  "+operation(e.Operation)+"  "+actor(e.Actor)))
		return
	}
	fmt.Fprintf(p.out, "%s  %-22s %s  %-13s -> %-13s #%-3d %s\n", e.ObservedAt.Local().Format("15:04:05"),
		e.Target.String(), e.InstanceID, e.From, e.To, e.Sequence, strings.TrimSpace(identity(e.Instance)+"  "+operation(e.Operation)+"  "+actor(e.Actor)))
}

// demoRoomSecret signs the demo's messages to its fake room.
const demoRoomSecret = "demo-secret"

// startDemoRoom serves a fake DingTalk room on loopback that prints every
// message it accepts, and returns it with its webhook URL.
func startDemoRoom(out io.Writer) (*httptest.Server, string) {
	room := notifiertest.NewRoom(notifiertest.DingTalk, notifiertest.Options{Secret: demoRoomSecret})
	var mu sync.Mutex
	printed := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		room.ServeHTTP(w, r)
		mu.Lock()
		defer mu.Unlock()
		msgs := room.Messages()
		for _, m := range msgs[printed:] {
			fmt.Fprintf(out, "%s  chat room <- %s\n    %s\n", m.Time.Format("15:04:05"), m.Title,
				strings.ReplaceAll(m.Text, "\n", "\n    "))
		}
		printed = len(msgs)
	}))
	return srv, srv.URL + "/robot/send?access_token=demo"
}
