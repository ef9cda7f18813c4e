package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/store"
	"github.com/cvmwatch/cvmwatch/watcher"
)

type stateFlags struct {
	config, url, target string
	instances, json     bool
	insecure            bool
	// nats and scanStream are where state reads the latest scan summaries
	// when no daemon answers and --server (or NATS_URL) is given.
	nats               natsClientFlags
	stream, scanStream string
}

func newStateCommand() *cobra.Command {
	var f stateFlags
	c := &cobra.Command{
		Use:   "state [--config FILE | --url URL | --server NATS_URL] [--target ACCOUNT/REGION] [--instances] [--json]",
		Short: "Show the snapshot: instances by state per target, scan progress, outbox, streams",
		Long: `Show what cvmwatch knows. While the daemon runs, state asks its HTTP API
(http.listen), which also lists the NATS streams with their replicas. When no
daemon answers: with --server (or NATS_URL) state reads the latest scan summary
of every target from the scans stream (nats.scan_stream), from any machine that
reaches NATS, and, when replicas share the targets (ha), which replica owns
each target and since when, from the lease bucket; otherwise it reads the database in data_dir directly (the daemon
holds a lock on it while it runs).`,
		Example: `  cvmwatch state --config /etc/cvmwatch/cvmwatch.yaml
  cvmwatch state --url http://127.0.0.1:9090 --target prod/ap-guangzhou --instances
  cvmwatch state --server nats://nats.internal:4222
  cvmwatch state --config cvmwatch.yaml --json | jq '.targets[].byState'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fromStream := c.Flags().Changed("server") || os.Getenv("NATS_URL") != ""
			if f.config == "" && f.url == "" && !fromStream {
				return usageError{errors.New("state: give --config FILE, --url URL or --server NATS_URL")}
			}
			if fromStream {
				if err := f.nats.resolve(c, os.LookupEnv); err != nil {
					return err
				}
				if f.scanStream == "" {
					f.scanStream = publisher.ScanStreamName(f.stream)
				}
				for _, s := range []string{f.stream, f.scanStream} {
					if err := watcher.ValidateToken(s); err != nil {
						return usageError{fmt.Errorf("stream %s: %w", watcher.Quote(s), err)}
					}
				}
			}
			st, err := loadState(c.Context(), f, fromStream, c.ErrOrStderr())
			if err != nil {
				return err
			}
			if f.json {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				out := map[string]any{"source": st.source, "targets": st.targets, "streams": st.streams}
				if st.ha != nil {
					out["ha"] = st.ha
				}
				return enc.Encode(out)
			}
			printState(c.OutOrStdout(), st, f.instances)
			return nil
		},
	}
	c.Flags().StringVar(&f.config, "config", "", "configuration file: its http.listen, or its data_dir when the daemon is not running")
	c.Flags().StringVar(&f.url, "url", "", "the daemon's HTTP address, e.g. http://127.0.0.1:9090")
	c.Flags().StringVar(&f.target, "target", "", "only this target, as ACCOUNT/REGION")
	c.Flags().BoolVar(&f.instances, "instances", false, "list every instance with its state")
	c.Flags().BoolVar(&f.json, "json", false, "print JSON")
	c.Flags().BoolVar(&f.insecure, "allow-insecure-permissions", false, "accept a config file with secrets that others can read")
	f.nats.register(c)
	c.Flags().StringVar(&f.stream, "stream", defaultStream, "event stream, shown with its replicas (nats.stream)")
	c.Flags().StringVar(&f.scanStream, "scan-stream", "", "stream of the scan summaries (nats.scan_stream; default: --stream + _SCANS)")
	return c
}

// stateView is what state shows: the targets, the NATS streams, and where
// they were read.
type stateView struct {
	source  string
	targets []targetHealth
	streams []publisher.StreamStatus
	// ha is the lease bucket's view, read with --server when replicas
	// share the targets (state_ha.go); nil otherwise.
	ha *haState
}

// loadState asks the daemon, or reads the scans stream (fromStream) or the
// database when no daemon answers.
func loadState(ctx context.Context, f stateFlags, fromStream bool, stderr io.Writer) (stateView, error) {
	if fromStream && f.config == "" && f.url == "" {
		return stateFromStream(ctx, f, stderr)
	}
	var cfg stateConfig
	base := f.url
	if f.config != "" {
		var err error
		if cfg, err = loadStateConfig(f.config, f.insecure); err != nil {
			return stateView{}, err
		}
		if base == "" {
			base = "http://" + cfg.HTTPListen
		}
	}
	st, err := stateFromAPI(ctx, base, f.target, f.instances)
	if err == nil {
		st.source = base
		return st, nil
	}
	var opErr *net.OpError
	if f.config == "" || !errors.As(err, &opErr) {
		return stateView{}, fmt.Errorf("state from %s: %w", base, err)
	}
	// Nobody listens: read the scans stream, or the database the daemon
	// would hold.
	if fromStream {
		return stateFromStream(ctx, f, stderr)
	}
	path := filepath.Join(cfg.DataDir, "cvmwatch.db")
	targets, err := stateFromStore(ctx, path, f.target, f.instances)
	if err != nil {
		return stateView{}, err
	}
	return stateView{source: path, targets: targets}, nil
}

func stateFromAPI(ctx context.Context, base, target string, instances bool) (stateView, error) {
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	if instances {
		q.Set("instances", "1")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/state?"+q.Encode(), nil)
	if err != nil {
		return stateView{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return stateView{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return stateView{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	var body struct {
		Targets []targetHealth
		Streams []publisher.StreamStatus
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&body); err != nil {
		return stateView{}, fmt.Errorf("decode: %w", err)
	}
	return stateView{targets: body.Targets, streams: body.Streams}, nil
}

func stateFromStore(ctx context.Context, path, only string, instances bool) ([]targetHealth, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no daemon answered and there is no database to read: %w", err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("%w (the daemon runs but its HTTP API did not answer)", err)
		}
		return nil, err
	}
	defer st.Close()
	list, err := st.Targets(ctx)
	if err != nil {
		return nil, err
	}
	var out []targetHealth
	for _, t := range list {
		if only != "" && t.String() != only {
			continue
		}
		views, err := loadInstances(ctx, st, t)
		if err != nil {
			return nil, err
		}
		meta, err := st.Load(ctx, t, func(watcher.Record) error { return nil })
		if err != nil {
			return nil, err
		}
		depth, oldest, err := st.OutboxStats(ctx, t)
		if err != nil {
			return nil, err
		}
		s := watcher.TargetStatus{Target: t, LastScan: meta.LastScan, LastComplete: meta.LastComplete,
			Baselined: meta.Baselined, ByState: map[watcher.State]int{}, OutboxDepth: depth, OutboxOldest: oldest}
		for _, v := range views {
			s.ByState[watcher.State(v.State)]++
		}
		h := judge(s, time.Hour, time.Now())
		h.Ready, h.Reason = false, "daemon not running"
		if instances {
			h.Instances = views
		}
		out = append(out, h)
	}
	return out, nil
}

// stateFromStream shows each target's latest scan summary from the scans
// stream, and the streams' replicas.
func stateFromStream(ctx context.Context, f stateFlags, stderr io.Writer) (stateView, error) {
	nc, err := f.nats.connect(ctx, "cvmwatch-state", stderr, false)
	if err != nil {
		return stateView{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return stateView{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, jsCallTimeout)
	defer cancel()
	scans, err := publisher.LatestScans(ctx, js, f.scanStream, f.nats.prefix)
	if err != nil {
		return stateView{}, explainStreamError(err, f.scanStream, f.nats.server)
	}
	st := stateView{source: fmt.Sprintf("stream %s at %s (latest scan summaries)", f.scanStream, publisher.Redact(f.nats.server))}
	now := time.Now()
	for _, sc := range scans {
		t := watcher.Target{Account: sc.Account, Region: sc.Region}
		if f.target != "" && t.String() != f.target {
			continue
		}
		started, _ := time.Parse(time.RFC3339Nano, sc.Started)
		h := targetHealth{Target: t.String(), LastScan: &started, ByState: sc.ByState, Held: sc.HeldDisappearances,
			PagesDone: sc.Pages - sc.PagesFailed, PagesTotal: sc.Pages,
			Reason: fmt.Sprintf("from its latest scan summary, stored %s ago", now.Sub(sc.Stored).Round(time.Second))}
		if sc.Complete {
			h.LastComplete = &started
		}
		st.targets = append(st.targets, h)
	}
	if st.streams, err = publisher.DescribeStreams(ctx, js, f.stream, f.scanStream); err != nil {
		return stateView{}, err
	}
	if err := addOwners(ctx, js, &st, f.target, now); err != nil {
		return stateView{}, err
	}
	return st, nil
}

func printState(w io.Writer, st stateView, instances bool) {
	targets := st.targets
	fmt.Fprintf(w, "from %s\n", st.source)
	for _, s := range st.streams {
		fmt.Fprintf(w, "stream %s: %d replica(s), subjects %s\n", s.Name, s.Replicas, strings.Join(s.Subjects, " "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tINSTANCES\tBY STATE\tLAST COMPLETE SCAN\tPROGRESS\tOUTBOX\tREADY")
	for _, t := range targets {
		total, states := 0, make([]string, 0, len(t.ByState))
		for st, n := range t.ByState {
			total += n
			states = append(states, fmt.Sprintf("%s %d", st, n))
		}
		slices.Sort(states)
		last := "never"
		if t.LastComplete != nil {
			last = time.Since(*t.LastComplete).Round(time.Second).String() + " ago"
		}
		progress := "-"
		if t.PagesTotal > 0 {
			progress = fmt.Sprintf("%d/%d pages", t.PagesDone, t.PagesTotal)
		}
		ready := "yes"
		if !t.Ready {
			ready = "no: " + t.Reason
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\n", t.Target, total, strings.Join(states, ", "), last, progress, t.OutboxDepth, ready)
	}
	tw.Flush()
	printOwners(w, targets, st.ha)
	if !instances {
		return
	}
	for _, t := range targets {
		fmt.Fprintf(w, "\n%s\n", t.Target)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tNAME\tSTATE\tSINCE\tEVENTS")
		for _, v := range t.Instances {
			name := printable(v.Name)
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", v.InstanceID, name, v.State, v.Since.Format(time.RFC3339), v.Sequence)
		}
		tw.Flush()
	}
}

// printOwners shows which replica holds each target's lease and since
// when (ha); nothing for a single process. With the lease bucket's view
// (ha) it also lists the live replicas, and says "none" for a target no
// replica holds.
func printOwners(w io.Writer, targets []targetHealth, ha *haState) {
	if ha != nil {
		printLeases(w, targets, ha)
		return
	}
	if !slices.ContainsFunc(targets, func(t targetHealth) bool { return t.Owner != "" }) {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tOWNER\tSINCE")
	for _, t := range targets {
		since := "-"
		if t.OwnerSince != nil {
			since = t.OwnerSince.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Target, cmp.Or(t.Owner, "-"), since)
	}
	tw.Flush()
}
