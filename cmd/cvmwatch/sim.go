package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// simFlags are the flags of "cvmwatch sim"; demo reuses the fleet ones.
type simFlags struct {
	listen      string
	instances   int
	regions     []string
	seed        int64
	credentials string
	rateLimit   float64
	latency     time.Duration
	jitter      time.Duration
	churn       float64
	dwellScale  float64
	anyAddress  bool
	opFailures  float64
	auditDelay  time.Duration
	auditRate   float64
}

func (f *simFlags) options() (cvmsim.Options, error) {
	creds, err := parseCredentials(f.credentials)
	if err != nil {
		return cvmsim.Options{}, usageError{fmt.Errorf("--credentials: %w", err)}
	}
	if f.instances < 0 {
		return cvmsim.Options{}, usageError{fmt.Errorf("--instances: %d is negative", f.instances)}
	}
	if f.churn < 0 {
		return cvmsim.Options{}, usageError{fmt.Errorf("--churn: %v is negative", f.churn)}
	}
	if f.dwellScale <= 0 {
		return cvmsim.Options{}, usageError{fmt.Errorf("--dwell-scale: %v must be positive", f.dwellScale)}
	}
	if !(f.opFailures >= 0 && f.opFailures <= 1) {
		return cvmsim.Options{}, usageError{fmt.Errorf("--op-failure-rate: %v is not a probability within [0, 1]", f.opFailures)}
	}
	if f.auditDelay < 0 {
		return cvmsim.Options{}, usageError{fmt.Errorf("--audit-delay: %v is negative", f.auditDelay)}
	}
	for _, r := range f.regions {
		if r == "" {
			return cvmsim.Options{}, usageError{fmt.Errorf("--regions: empty region name")}
		}
	}
	return cvmsim.Options{
		Listen:             f.listen,
		Regions:            f.regions,
		InstancesPerRegion: f.instances,
		Seed:               f.seed,
		Credentials:        creds,
		RateLimit:          f.rateLimit,
		Latency:            f.latency,
		LatencyJitter:      f.jitter,
		Churn:              f.churn,
		DwellScale:         f.dwellScale,

		OperationFailureRate: f.opFailures,
		AuditDelay:           f.auditDelay,
		AuditRateLimit:       f.auditRate,
	}, nil
}

// parseCredentials reads "ID:KEY[,ID:KEY]". Empty means the simulator's
// default pair.
func parseCredentials(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		id, key, ok := strings.Cut(pair, ":")
		if !ok || id == "" || key == "" {
			// Never echo the pair: it holds a secret key.
			return nil, fmt.Errorf("pair %d is not ID:KEY", i+1)
		}
		out[id] = key
	}
	return out, nil
}

func (f *simFlags) addFleetFlags(c *cobra.Command, instances int, churn float64, dwellScale float64) {
	c.Flags().IntVar(&f.instances, "instances", instances, "instances per region")
	c.Flags().StringSliceVar(&f.regions, "regions", []string{"ap-guangzhou"}, "comma-separated regions")
	c.Flags().Int64Var(&f.seed, "seed", 1, "seed of the fleet: the same seed gives the same instances")
	c.Flags().Float64Var(&f.churn, "churn", churn, "lifecycle operations started per second across the fleet (0: the fleet changes only when told to)")
	c.Flags().Float64Var(&f.dwellScale, "dwell-scale", dwellScale, "multiplies how long instances stay in intermediate states")
	c.Flags().DurationVar(&f.latency, "latency", 0, "added latency per API request")
	c.Flags().DurationVar(&f.jitter, "latency-jitter", 0, "added random latency per API request, up to this")
	c.Flags().Float64Var(&f.rateLimit, "rate-limit", 40, "requests per second per (action, SecretId), as the real quota; negative: unlimited")
	c.Flags().Float64Var(&f.opFailures, "op-failure-rate", 0.02, "probability that a churn operation fails (LatestOperationState FAILED, state unchanged)")
}

func newSimCommand() *cobra.Command {
	var f simFlags
	c := &cobra.Command{
		Use:   "sim",
		Short: "Serve a simulated Tencent Cloud CVM API (no cloud account needed)",
		Long: `Serve a fake CVM API that the official SDKs cannot tell from the real one:
TC3-HMAC-SHA256 signatures, paging, the 40 req/s quota, a seeded fleet with
optional churn, and an unsigned admin API under /_sim/ to script scenarios,
read the ground truth and inject faults.

DescribeInstances answers names, zones, types, IPs, tags, charge types, times,
restrict state, isolated source and LatestOperation*: every operation (churn
or admin) gets a fresh request ID, OPERATING while its transitional state
lasts, then SUCCESS, or FAILED with a message (--op-failure-rate). The same
endpoint serves CloudAudit LookUpEvents (service cloudaudit, 2019-03-19,
20 req/s by default) from the recorded operations, each visible --audit-delay
after it was made. Ground truth: /_sim/history (state changes, with the
operation that caused each) and /_sim/operations (request ID, action,
instance, time, actor, outcome).`,
		Example: `  cvmwatch sim --listen 127.0.0.1:9000 --instances 500 --churn 1
  curl -s 127.0.0.1:9000/_sim/instances | head
  curl -s -X PUT 127.0.0.1:9000/_sim/instances/ins-0a1b2c3d -d '{"state":"STOPPED"}'
  curl -s -X PUT 127.0.0.1:9000/_sim/instances/ins-0a1b2c3d -d '{"state":"STOPPED","operation":"StopInstances","actor":"alice"}'
  curl -s -X PUT 127.0.0.1:9000/_sim/instances/ins-0a1b2c3d -d '{"name":"web-01","tags":[{"Key":"env","Value":"prod"}]}'
  curl -s 127.0.0.1:9000/_sim/operations | head
  curl -s -X POST 127.0.0.1:9000/_sim/faults -d '{"kind":"error","code":"InternalError","rate":0.1}'
  curl -s -X POST 127.0.0.1:9000/_sim/faults -d '{"kind":"error","action":"LookUpEvents","code":"AuthFailure.UnauthorizedOperation"}'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkLoopback(f.listen, f.anyAddress); err != nil {
				return usageError{err}
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			srv, err := cvmsim.NewServer(opts)
			if err != nil {
				return fmt.Errorf("sim: %w", err)
			}
			defer srv.Close()
			out := c.OutOrStdout()
			fmt.Fprintf(out, "cvmsim serving the CVM API at %s (regions %s, %d instances each)\n",
				srv.URL(), strings.Join(f.regions, ","), f.instances)
			if f.credentials == "" {
				fmt.Fprintf(out, "credentials: SecretId %s SecretKey %s (the simulator's public test pair)\n",
					cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey)
			} else {
				fmt.Fprintf(out, "credentials: the %d pairs given with --credentials\n", len(opts.Credentials))
			}
			fmt.Fprintf(out, "admin API: %s/_sim/ (instances, history, operations, stats, faults)\n", srv.URL())
			<-c.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&f.listen, "listen", "127.0.0.1:9000", "address to serve on")
	c.Flags().BoolVar(&f.anyAddress, "allow-non-loopback", false, "allow --listen on a non-loopback address (the admin API is unauthenticated)")
	c.Flags().StringVar(&f.credentials, "credentials", "", "accepted credentials as ID:KEY[,ID:KEY] (default: the simulator's public test pair)")
	f.addFleetFlags(c, 100, 0, 1)
	c.Flags().DurationVar(&f.auditDelay, "audit-delay", 0, "how long after an operation LookUpEvents can find it (tests the late-attribution path)")
	c.Flags().Float64Var(&f.auditRate, "audit-rate-limit", 20, "LookUpEvents requests per second per SecretId, as the real quota; negative: unlimited")
	return c
}

// checkLoopback refuses a non-loopback listen address unless allowed.
func checkLoopback(listen string, allowed bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if allowed || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address; the admin API has no authentication (use --allow-non-loopback to insist)", listen)
}
