package cvmsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value is valid: an empty fleet in
// ap-guangzhou, the default credentials, 40 requests/s per action.
type Options struct {
	// Listen is the address NewServer listens on; default "127.0.0.1:0".
	Listen string
	// Regions the server holds instances in; default {"ap-guangzhou"}.
	Regions []string
	// InstancesPerRegion is the initial fleet size of each region.
	InstancesPerRegion int
	// Seed makes IDs, names, states and churn deterministic: the same seed
	// gives the same fleet.
	Seed int64
	// Credentials maps SecretId to SecretKey; empty means
	// {DefaultSecretID: DefaultSecretKey}.
	Credentials map[string]string
	// RateLimit is the quota in requests per second per (action, SecretId):
	// 0 means DefaultRateLimit (40), negative means unlimited.
	RateLimit float64
	// Burst is the token bucket size; 0 means ceil(RateLimit).
	Burst int
	// Latency is added to every API request, plus a uniform random
	// [0, LatencyJitter).
	Latency       time.Duration
	LatencyJitter time.Duration
	// Churn is the number of lifecycle operations (create, stop, start,
	// reboot, terminate) started per second across the fleet; 0 means the
	// fleet changes only when told to.
	Churn float64
	// DwellScale multiplies the dwell times of intermediate states (PENDING,
	// STOPPING, SHUTDOWN...); 0 means 1.
	DwellScale float64
	// STSMaxDuration caps the lifetime of the temporary credentials that
	// AssumeRole issues, like a role's maximum session duration; 0 means
	// only the API's own limit (DurationSeconds, default 7200 s). Tests set a
	// few seconds to watch credentials being refreshed.
	STSMaxDuration time.Duration
	// OperationFailureRate is the probability, within [0, 1], that an
	// operation the churn engine starts fails: LatestOperationState FAILED
	// with a LatestOperationErrorMsg after a while, the state unchanged. 0
	// means never. Drawn from the seeded stream of operations.
	OperationFailureRate float64
	// AuditDelay is how long after an operation its CloudAudit record
	// becomes visible to LookUpEvents (server clock), like the real
	// service's ingestion delay: 0 means at once.
	AuditDelay time.Duration
	// AuditRateLimit is the quota of LookUpEvents in requests per second per
	// SecretId: 0 means DefaultAuditRateLimit (20), negative means
	// unlimited. Its burst is ceil(AuditRateLimit).
	AuditRateLimit float64
	// Logger receives a debug line per API request and info lines for
	// admin changes; nil discards. Secrets are never logged.
	Logger *slog.Logger
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	creds   map[string]string
	regions map[string]bool
	// advertised is what DescribeRegions answers; nil: Options.Regions.
	advertised []string
	handler    http.Handler
	listener   net.Listener
	httpSrv    *http.Server
	offset     atomic.Int64 // clock offset in nanoseconds
	sts        stsState     // temporary credentials issued by AssumeRole

	mu        sync.Mutex
	fleet     fleet
	faults    faults
	stats     counters
	quota     quota
	churn     churn
	rngFleet  *rand.Rand
	rngChurn  *rand.Rand
	rngFault  *rand.Rand
	rngJitter *rand.Rand
	rngOps    *rand.Rand // operation failures, actors, source IPs, isolations

	lifeMu    sync.Mutex
	closed    bool
	inflight  sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
	churnDone chan struct{}
	// churnRunning says the churn goroutine was started (it then closes
	// churnDone when it ends). Guarded by lifeMu.
	churnRunning bool
}

// normalize validates opts and fills in the defaults.
func normalize(opts Options) (Options, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"ap-guangzhou"}
	}
	seen := map[string]bool{}
	for _, r := range opts.Regions {
		if r == "" || seen[r] {
			return opts, fmt.Errorf("regions: empty or duplicate region %q", r)
		}
		seen[r] = true
	}
	opts.Regions = append([]string(nil), opts.Regions...)
	if opts.InstancesPerRegion < 0 || opts.InstancesPerRegion > 1_000_000 {
		return opts, fmt.Errorf("instances per region %d: want 0..1000000", opts.InstancesPerRegion)
	}
	if len(opts.Credentials) == 0 {
		opts.Credentials = map[string]string{DefaultSecretID: DefaultSecretKey}
	}
	creds := make(map[string]string, len(opts.Credentials))
	for id, key := range opts.Credentials {
		if id == "" || key == "" {
			return opts, errors.New("credentials: empty SecretId or SecretKey")
		}
		creds[id] = key
	}
	opts.Credentials = creds
	if math.IsNaN(opts.RateLimit) || math.IsInf(opts.RateLimit, 0) {
		return opts, errors.New("rate limit must be a finite number")
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.Burst < 0 {
		return opts, fmt.Errorf("burst %d: must not be negative", opts.Burst)
	}
	if opts.Burst == 0 && opts.RateLimit > 0 {
		opts.Burst = int(math.Ceil(opts.RateLimit))
	}
	if opts.Latency < 0 || opts.LatencyJitter < 0 {
		return opts, errors.New("latency and jitter must not be negative")
	}
	if opts.Churn < 0 || math.IsNaN(opts.Churn) || math.IsInf(opts.Churn, 0) {
		return opts, fmt.Errorf("churn %v: want a finite rate >= 0", opts.Churn)
	}
	if opts.DwellScale < 0 || math.IsNaN(opts.DwellScale) || math.IsInf(opts.DwellScale, 0) {
		return opts, fmt.Errorf("dwell scale %v: want a finite factor >= 0", opts.DwellScale)
	}
	if !(opts.OperationFailureRate >= 0 && opts.OperationFailureRate <= 1) {
		return opts, fmt.Errorf("operation failure rate %v: want a probability within [0, 1]", opts.OperationFailureRate)
	}
	if opts.AuditDelay < 0 {
		return opts, fmt.Errorf("audit delay %v: must not be negative", opts.AuditDelay)
	}
	if math.IsNaN(opts.AuditRateLimit) || math.IsInf(opts.AuditRateLimit, 0) {
		return opts, errors.New("audit rate limit must be a finite number")
	}
	if opts.AuditRateLimit == 0 {
		opts.AuditRateLimit = DefaultAuditRateLimit
	}
	if opts.STSMaxDuration < 0 {
		return opts, fmt.Errorf("sts max duration %v: must not be negative", opts.STSMaxDuration)
	}
	if opts.DwellScale == 0 {
		opts.DwellScale = 1
	}
	return opts, nil
}

// newServer builds a server with its initial fleet, without listening and
// without starting the churn goroutine.
func newServer(opts Options) (*Server, error) {
	opts, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		creds:     opts.Credentials,
		regions:   map[string]bool{},
		fleet:     newFleet(opts.Regions),
		stats:     counters{requests: map[string]int64{}},
		quota:     newQuota(opts.RateLimit, opts.Burst, map[string]float64{ActionLookUpEvents: opts.AuditRateLimit}),
		rngFleet:  newRNG(opts.Seed, 1),
		rngChurn:  newRNG(opts.Seed, 2),
		rngFault:  newRNG(opts.Seed, 3),
		rngJitter: newRNG(opts.Seed, 4),
		rngOps:    newRNG(opts.Seed, 5),
		closing:   make(chan struct{}),
		churnDone: make(chan struct{}),
	}
	close(s.churnDone) // replaced by NewServer when churn runs
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range opts.Regions {
		s.regions[r] = true
	}
	t0 := s.now()
	s.churn = churn{rate: opts.Churn, scale: opts.DwellScale, target: opts.InstancesPerRegion, last: t0}
	s.seedFleetLocked(opts.InstancesPerRegion, t0)
	s.handler = s.track(s.routes())
	return s, nil
}

// NewServer starts a simulator listening on opts.Listen, with its initial
// fleet in place and, if opts.Churn > 0, the churn engine running. Close it
// when done.
func NewServer(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.opts.Listen, err)
	}
	s.listener = ln
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() { _ = s.httpSrv.Serve(ln) }()
	if s.opts.Churn > 0 {
		s.lifeMu.Lock()
		s.churnRunning = true
		s.churnDone = make(chan struct{})
		go s.runChurn()
		s.lifeMu.Unlock()
	}
	s.log.Info("cvm simulator listening", slog.String("endpoint", s.Endpoint()),
		slog.Any("regions", s.opts.Regions), slog.Int("instancesPerRegion", s.opts.InstancesPerRegion))
	return s, nil
}

// Handler returns the whole API and the admin API under /_sim/, for callers
// that serve it on their own listener. It stays usable after Close only to
// answer ServiceUnavailable.
func (s *Server) Handler() http.Handler { return s.handler }

// Endpoint returns "host:port" of the listener (127.0.0.1 when listening on
// every address): what goes into the SDK's HttpProfile.Endpoint.
func (s *Server) Endpoint() string {
	if s.listener == nil {
		return ""
	}
	addr, ok := s.listener.Addr().(*net.TCPAddr)
	if !ok {
		return s.listener.Addr().String()
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// URL returns "http://" + Endpoint().
func (s *Server) URL() string { return "http://" + s.Endpoint() }

// Close stops the listener, the churn engine and every request still waiting
// (latency, timeout faults), and returns once they are done. It is safe to
// call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.lifeMu.Lock()
		s.closed = true
		s.lifeMu.Unlock()
		close(s.closing)
		if s.httpSrv != nil {
			_ = s.httpSrv.Close()
		}
		<-s.churnDone
		s.inflight.Wait()
	})
}

// track refuses requests after Close and lets Close wait for the others.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.lifeMu.Lock()
		if s.closed {
			s.lifeMu.Unlock()
			writeJSON(w, encodeError(errorf(CodeServiceUnavailable, "The simulator is closed."), newRequestID()))
			return
		}
		s.inflight.Add(1)
		s.lifeMu.Unlock()
		defer s.inflight.Done()
		next.ServeHTTP(w, r)
	})
}

// now is the server's clock: real time plus the clock offset.
func (s *Server) now() time.Time {
	return time.Now().Add(time.Duration(s.offset.Load()))
}

// SetClockOffset makes the server's "now" real time + d: signatures are
// checked against it and History and creation times use it.
func (s *Server) SetClockOffset(d time.Duration) {
	s.offset.Store(int64(d))
}

// ClockOffset returns the offset set by SetClockOffset.
func (s *Server) ClockOffset() time.Duration {
	return time.Duration(s.offset.Load())
}
