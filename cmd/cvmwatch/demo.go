package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

type demoFlags struct {
	sim      simFlags
	interval time.Duration
	duration time.Duration
}

func newDemoCommand() *cobra.Command {
	var f demoFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "Watch a simulated fleet change state, with no cloud account",
		Long: `Start the CVM simulator with a churning fleet, scan it through the official
Tencent SDK at the API quota and print every state change as it is seen.
Stops on Ctrl-C or after --duration.`,
		Example: `  cvmwatch demo
  cvmwatch demo --instances 2000 --churn 5 --duration 1m`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.interval <= 0 {
				return usageError{fmt.Errorf("--interval: %v must be positive", f.interval)}
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
	return c
}

func runDemo(ctx context.Context, f demoFlags, out io.Writer) error {
	opts, err := f.sim.options()
	if err != nil {
		return err
	}
	srv, err := cvmsim.NewServer(opts)
	if err != nil {
		return fmt.Errorf("demo: simulator: %w", err)
	}
	defer srv.Close()
	fmt.Fprintf(out, "simulated CVM API at %s: %d instances per region, %.1f lifecycle operations/s\n",
		srv.URL(), f.sim.instances, f.sim.churn)

	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	limiters := cvm.NewLimiters(f.sim.rateLimit, 1)
	var scanners []*cvm.Scanner
	for _, region := range f.sim.regions {
		client, err := cvm.NewClient(cvm.ClientConfig{
			Region:     region,
			Endpoint:   srv.URL(),
			Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey),
		})
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		s, err := cvm.NewScanner(cvm.ScannerConfig{
			Target:  watcher.Target{Account: "demo", Region: region},
			Client:  client,
			Limiter: limiters.Get("demo/" + cvm.ActionDescribeInstancesStatus),
			Logger:  logger,
		})
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		scanners = append(scanners, s)
	}

	last := make([]map[string]watcher.State, len(scanners))
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		for i, s := range scanners {
			scan, err := s.Scan(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				fmt.Fprintf(out, "%s  scan %s incomplete: %v\n", now(), scan.Target, err)
			}
			last[i] = printChanges(out, scan, last[i])
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// printChanges prints what changed since the previous scan and returns the
// new view. The first scan prints a summary only.
func printChanges(out io.Writer, scan watcher.Scan, prev map[string]watcher.State) map[string]watcher.State {
	cur := make(map[string]watcher.State, len(scan.Observations))
	for _, o := range scan.Observations {
		cur[o.InstanceID] = o.State
	}
	if prev == nil {
		fmt.Fprintf(out, "%s  %s baseline: %d instances (%d requests, %s)\n",
			now(), scan.Target, len(cur), scan.Stats.Requests, scan.Stats.Duration.Round(time.Millisecond))
		return cur
	}
	for _, o := range scan.Observations {
		if was, ok := prev[o.InstanceID]; !ok {
			fmt.Fprintf(out, "%s  %s %s  %s -> %s\n", now(), scan.Target, o.InstanceID, watcher.Absent, o.State)
		} else if was != o.State {
			fmt.Fprintf(out, "%s  %s %s  %s -> %s\n", now(), scan.Target, o.InstanceID, was, o.State)
		}
	}
	if !scan.Complete {
		// Never call an instance gone on the word of an incomplete scan.
		for id, st := range prev {
			if _, ok := cur[id]; !ok {
				cur[id] = st
			}
		}
		return cur
	}
	for id, was := range prev {
		if _, ok := cur[id]; !ok {
			fmt.Fprintf(out, "%s  %s %s  %s -> %s\n", now(), scan.Target, id, was, watcher.Absent)
		}
	}
	return cur
}

func now() string { return time.Now().Format("15:04:05") }
