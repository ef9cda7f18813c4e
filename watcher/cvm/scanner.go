package cvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Paging constants of DescribeInstancesStatus.
const (
	// PageSize is the API's maximum Limit.
	PageSize = 100
	// DefaultPageConcurrency bounds the pages in flight per scan: enough to
	// keep 40 req/s busy at a few hundred ms of latency.
	DefaultPageConcurrency = 8
	// DefaultMaxInstances is the largest TotalCount a scan believes.
	DefaultMaxInstances = 1_000_000
)

// ActionDescribeInstancesStatus is the one API the scanner calls; limiters are
// keyed by it.
const ActionDescribeInstancesStatus = "DescribeInstancesStatus"

// ScannerConfig wires a Scanner. Client and Limiter are required.
type ScannerConfig struct {
	Target watcher.Target
	// Client talks to the target's region (see NewClient).
	Client *cvmapi.Client
	// Limiter paces DescribeInstancesStatus for the target's credential; share
	// it between every target that spends the same quota.
	Limiter *Limiter
	// PageConcurrency bounds the pages in flight; default
	// DefaultPageConcurrency.
	PageConcurrency int
	// MaxInstances is the largest TotalCount believed; default
	// DefaultMaxInstances. A larger one makes the scan incomplete.
	MaxInstances int
	Retry        RetryPolicy
	// Logger receives warnings about rejected items and the progress of long
	// scans; default slog.Default().
	Logger *slog.Logger
	// Observer is told about every request and the scan's progress.
	Observer Observer
	// ProgressEvery is how often a long scan logs its progress; default 10s.
	ProgressEvery time.Duration
}

// Scanner lists one target's instances through the official SDK. It
// implements watcher.Source and is safe for concurrent use.
type Scanner struct {
	target      watcher.Target
	client      *cvmapi.Client
	limiter     *Limiter
	concurrency int
	maxInst     int
	retry       RetryPolicy
	log         *slog.Logger
	obs         Observer
	progEvery   time.Duration
}

var _ watcher.Source = (*Scanner)(nil)

// NewScanner returns a Scanner for cfg.Target.
func NewScanner(cfg ScannerConfig) (*Scanner, error) {
	if cfg.Client == nil || cfg.Limiter == nil {
		return nil, errors.New("cvm scanner: Client and Limiter are required")
	}
	s := &Scanner{
		target:      cfg.Target,
		client:      cfg.Client,
		limiter:     cfg.Limiter,
		concurrency: cfg.PageConcurrency,
		maxInst:     cfg.MaxInstances,
		retry:       cfg.Retry.withDefaults(),
		log:         cfg.Logger,
	}
	if s.concurrency <= 0 {
		s.concurrency = DefaultPageConcurrency
	}
	if s.maxInst <= 0 {
		s.maxInst = DefaultMaxInstances
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.obs = cfg.Observer
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.progEvery = cfg.ProgressEvery
	if s.progEvery <= 0 {
		s.progEvery = 10 * time.Second
	}
	s.log = s.log.With("account", cfg.Target.Account, "region", cfg.Target.Region)
	return s, nil
}

// Scan reads the first page to learn TotalCount, then the other pages
// concurrently under the limiter. If the items do not add up (the fleet
// changed during paging, or TotalCount lied low) and the last page was full,
// it keeps paging until a short page. The scan is complete only if every
// page succeeded, TotalCount was believable and no instance was reported with
// two different states.
func (s *Scanner) Scan(ctx context.Context) (watcher.Scan, error) {
	return s.scan(ctx, nil)
}

// ScanPages is Scan, handing each page that succeeded to page as it
// arrives (see watcher.PageScanner).
func (s *Scanner) ScanPages(ctx context.Context, page func(watcher.Page)) (watcher.Scan, error) {
	return s.scan(ctx, page)
}

var _ watcher.PageScanner = (*Scanner)(nil)

func (s *Scanner) scan(ctx context.Context, onPage func(watcher.Page)) (watcher.Scan, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	started := time.Now()
	st := callStats{onPage: onPage}
	acc := newAccumulator()
	var failures []error
	stopProgress := s.reportProgress(ctx, &st)
	defer stopProgress()

	first, err := s.describe(ctx, &st, describeArgs{offset: 0, limit: PageSize})
	if err != nil {
		return s.finish(acc, &st, started, 0, []error{fmt.Errorf("offset 0: %w", err)})
	}
	acc.add(first)
	total := first.total
	if total > s.maxInst {
		return s.finish(acc, &st, started, total, []error{fmt.Errorf("%w: TotalCount %d exceeds the limit of %d instances per target", ErrMalformed, total, s.maxInst)})
	}

	// The remaining pages, in parallel.
	var offsets []int
	for off := PageSize; off < total; off += PageSize {
		offsets = append(offsets, off)
	}
	// pagesTotal was set from the first page's TotalCount (see describe).
	pages, pageErrs := s.fetchAll(ctx, cancel, &st, offsets)
	last := first
	for _, p := range pages {
		acc.add(p)
		if p.offset > last.offset {
			last = p
		}
	}
	failures = append(failures, pageErrs...)

	// More items than TotalCount said: page on until a short page.
	if len(failures) == 0 && last.raw >= PageSize && (acc.distinct() > total || acc.drift) {
		for off := last.offset + PageSize; off < s.maxInst; off += PageSize {
			st.pagesTotal.Add(1)
			p, err := s.describe(ctx, &st, describeArgs{offset: off, limit: PageSize})
			if err != nil {
				failures = append(failures, fmt.Errorf("offset %d: %w", off, err))
				break
			}
			acc.add(p)
			if p.raw < PageSize {
				break
			}
		}
	}
	return s.finish(acc, &st, started, total, failures)
}

// fetchAll fetches the pages at offsets with at most s.concurrency in flight.
// An auth failure cancels the rest: the other pages would fail the same way.
func (s *Scanner) fetchAll(ctx context.Context, cancel context.CancelFunc, st *callStats, offsets []int) ([]page, []error) {
	var (
		mu    sync.Mutex
		pages = make([]page, 0, len(offsets))
		errs  []error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	workers := min(s.concurrency, len(offsets))
	for range workers {
		wg.Go(func() {
			for off := range next {
				p, err := s.describe(ctx, st, describeArgs{offset: off, limit: PageSize})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("offset %d: %w", off, err))
					if errors.Is(err, watcher.ErrAuth) {
						cancel()
					}
				} else {
					pages = append(pages, p)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, off := range offsets {
		select {
		case next <- off:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if n := len(offsets) - len(pages) - len(errs); n > 0 {
		errs = append(errs, fmt.Errorf("%d pages not fetched: %w", n, context.Cause(ctx)))
	}
	return pages, errs
}

// finish builds the Scan and the error that explains an incomplete one.
func (s *Scanner) finish(acc *accumulator, st *callStats, started time.Time, total int, failures []error) (watcher.Scan, error) {
	scan := watcher.Scan{
		Target:       s.target,
		Observations: acc.observations(),
		Unreadable:   acc.unreadable(),
		Stats: watcher.ScanStats{
			Started:     started,
			Duration:    time.Since(started),
			TotalCount:  total,
			Pages:       acc.pages,
			PagesFailed: len(failures),
			Requests:    int(st.requests.Load()),
			Retries:     int(st.retries.Load()),
			Throttles:   int(st.throttles.Load()),
			Rejected:    acc.rejected,
			Duplicates:  acc.duplicates,
			Conflicts:   len(acc.conflicts),
			CountDrift:  acc.drift || acc.distinct()+acc.anonymous != total,
		},
	}
	for _, r := range acc.reasons {
		s.log.Warn("rejected item from DescribeInstancesStatus", "reason", r)
	}
	if n := acc.rejected - len(acc.reasons); n > 0 {
		s.log.Warn("rejected more items from DescribeInstancesStatus", "count", n)
	}
	if len(acc.conflicts) > 0 {
		failures = append(failures, fmt.Errorf("%d instances reported with two different states", len(acc.conflicts)))
	}
	if len(failures) > 0 {
		return scan, fmt.Errorf("%w: %s: %w", watcher.ErrIncomplete, s.target, errors.Join(failures...))
	}
	scan.Complete = true
	return scan, nil
}

// describeArgs is one DescribeInstancesStatus request.
type describeArgs struct {
	offset, limit int
	ids           []string
}

// callStats counts requests across the goroutines of one scan or lookup.
type callStats struct {
	requests, retries, throttles atomicInt
	// pagesDone and pagesTotal track a scan's progress.
	pagesDone, pagesTotal atomicInt
	// onPage, if set, is handed each listing page that succeeded (see
	// watcher.PageScanner); pageMu makes its calls one at a time.
	onPage func(watcher.Page)
	pageMu sync.Mutex
}

// reportProgress tells the observer of every page done and logs a long
// scan's progress every ProgressEvery; the returned func stops it.
func (s *Scanner) reportProgress(ctx context.Context, st *callStats) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.progEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.log.Info("scan in progress", "pages_done", st.pagesDone.Load(), "pages_total", st.pagesTotal.Load(),
					"requests", st.requests.Load(), "throttles", st.throttles.Load())
			}
		}
	}()
	return func() { cancel(); <-done }
}

// describe sends one request with retries (see caller) and reports a
// listing page's progress, and the page itself to st.onPage.
func (s *Scanner) describe(ctx context.Context, st *callStats, args describeArgs) (page, error) {
	started := time.Now() // before the limiter's wait: no later than the read
	var p page
	c := caller{limiter: s.limiter, retry: s.retry, obs: s.obs, account: s.target.Account, action: ActionDescribeInstancesStatus}
	err := c.do(ctx, st, func() error {
		var err error
		p, err = s.describeOnce(ctx, args)
		return err
	})
	if err != nil {
		return page{}, err
	}
	if args.ids == nil {
		// The first page tells the total: report 1 of N, not 1 of 1.
		st.pagesTotal.CompareAndSwap(0, int64(pagesFor(min(p.total, s.maxInst))))
		s.obs.Progress(s.target, int(st.pagesDone.Add(1)), int(max(st.pagesTotal.Load(), 1)))
		if st.onPage != nil {
			st.pageMu.Lock()
			st.onPage(watcher.Page{Observations: p.items, Started: started, Done: time.Now()})
			st.pageMu.Unlock()
		}
	}
	return p, nil
}

func (s *Scanner) describeOnce(ctx context.Context, args describeArgs) (page, error) {
	req := cvmapi.NewDescribeInstancesStatusRequest()
	offset, limit := int64(args.offset), int64(args.limit)
	req.Offset, req.Limit = &offset, &limit
	for _, id := range args.ids {
		req.InstanceIds = append(req.InstanceIds, &id)
	}
	resp, err := describeInstancesStatus(ctx, s.client, req)
	if err != nil {
		return page{}, err
	}
	return parsePage(args.offset, resp)
}

// pagesFor is the number of pages that list total instances (at least one).
func pagesFor(total int) int {
	return max(1, (total+PageSize-1)/PageSize)
}
