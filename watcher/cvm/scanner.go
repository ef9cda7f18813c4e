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
	// DefaultDescribeShare is the part of the DescribeInstances quota that
	// full scans may use by default (see ScannerConfig.Describe): enough to
	// bring a scan to about 0.57 of one API's time, while enrichment keeps a
	// quarter of the quota even during a scan.
	DefaultDescribeShare = 0.75
	// DefaultMixedPause is how long a target's scans read every page
	// through DescribeInstancesStatus after DescribeInstances was found to
	// list in another order, or refused (see doc.go).
	DefaultMixedPause = time.Hour
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
	// Describe, if set, lets full scans read part of their pages through
	// DescribeInstances, which has its own quota: it paces those pages.
	// Make it the share of the Enricher's DescribeInstances limiter that
	// scans may use (Limiters.Share of that QuotaKey, e.g. at
	// DefaultDescribeShare), so enrichment always keeps the rest. Nil turns
	// mixed scans off: every page goes through DescribeInstancesStatus.
	Describe *Limiter
	// MixedPause is how long a target's scans stay on
	// DescribeInstancesStatus alone after a mixed scan found the two APIs
	// disagree (see doc.go); default DefaultMixedPause.
	MixedPause time.Duration
}

// Scanner lists one target's instances through the official SDK. It
// implements watcher.Source and is safe for concurrent use.
type Scanner struct {
	target watcher.Target
	client *cvmapi.Client
	// status reads pages through DescribeInstancesStatus; described,
	// if not nil, through DescribeInstances (mixed scans).
	status      lane
	described   *lane
	mix         mixState
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
	s.status = lane{
		call: caller{limiter: cfg.Limiter, retry: s.retry, obs: s.obs, account: s.target.Account, action: ActionDescribeInstancesStatus},
		read: s.describeOnce,
	}
	if cfg.Describe != nil {
		s.described = &lane{
			call: caller{limiter: cfg.Describe, retry: s.retry, obs: s.obs, account: s.target.Account, action: ActionDescribeInstances},
			read: s.describeInstancesOnce,
		}
		s.mix.pause = cfg.MixedPause
		if s.mix.pause <= 0 {
			s.mix.pause = DefaultMixedPause
		}
	}
	return s, nil
}

// Scan reads the first page to learn TotalCount, then the other pages
// concurrently under the limiter (in a mixed scan, under both APIs'
// limiters: see ScannerConfig.Describe). If the items do not add up (the fleet
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
	// drain ends the waits for a turn at the limiters once every offset
	// is handed out (and the order probe, if still running).
	drainCtx, drain := context.WithCancel(ctx)
	defer drain()
	var probe *mixGate
	if len(offsets) > 0 && s.mixedAllowed() {
		probe = s.probeOrder(ctx, drainCtx, &st, first)
	}
	// pagesTotal was set from the first page's TotalCount (see describe).
	pages, pageErrs := s.fetchAll(ctx, cancel, drainCtx, drain, &st, offsets, probe)
	if probe != nil {
		<-probe.done
	}
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
	if len(failures) == 0 && acc.describedPages > 0 && !acc.drift && acc.distinct()+acc.anonymous != total {
		// Every page agreed on TotalCount, so the fleet did not visibly
		// change; yet the pages of two APIs do not add up to it.
		s.pauseMixed("the pages read through both APIs did not add up to TotalCount while every page agreed on it",
			"total", total, "distinct", acc.distinct())
	}
	return s.finish(acc, &st, started, total, failures)
}

// fetchAll fetches the pages at offsets: workers of each API take the next
// offset from one queue as soon as their API's limiter gives them a turn,
// so the split between the APIs follows their real rates. At most
// s.concurrency pages per API are in flight. The DescribeInstances
// workers run only when probe (nil: none) finds the APIs agree. An auth
// failure of DescribeInstancesStatus cancels the rest: its other pages
// would fail the same way; one of DescribeInstances stops that API's
// workers and pauses mixed scans. drainCtx, a child of ctx, is ended by
// drain once the last offset is handed out.
func (s *Scanner) fetchAll(ctx context.Context, cancel context.CancelFunc, drainCtx context.Context, drain context.CancelFunc,
	st *callStats, offsets []int, probe *mixGate) ([]page, []error) {
	var (
		mu    sync.Mutex
		pages = make([]page, 0, len(offsets))
		errs  []error
		wg    sync.WaitGroup
		next  atomicInt
	)
	take := func() (int, bool) {
		i := int(next.Add(1)) - 1
		if i >= len(offsets) {
			return 0, false
		}
		if i == len(offsets)-1 {
			drain()
		}
		return offsets[i], true
	}
	record := func(off int, p page, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("offset %d: %w", off, err))
		} else {
			pages = append(pages, p)
		}
	}
	work := func(l *lane) {
		for int(next.Load()) < len(offsets) {
			if err := l.call.limiter.Wait(drainCtx); err != nil {
				if drainCtx.Err() != nil {
					return // drained, or the scan is over
				}
				// The wait cannot end in time: that page fails.
				if off, ok := take(); ok {
					record(off, page{}, fmt.Errorf("rate limiter: %w", err))
				}
				continue
			}
			off, ok := take()
			if !ok {
				return
			}
			p, err := s.readPage(ctx, st, l, off)
			record(off, p, err)
			if errors.Is(err, watcher.ErrAuth) {
				if l == s.described {
					s.pauseMixed("DescribeInstances refused the credential", "err", err)
					return
				}
				cancel()
			}
		}
	}
	workers := min(s.concurrency, len(offsets))
	for range workers {
		wg.Go(func() { work(&s.status) })
	}
	if probe != nil {
		for range workers {
			wg.Go(func() {
				if probe.wait(drainCtx) {
					work(s.described)
				}
			})
		}
	}
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
		Described:    acc.describedSorted(),
		Stats: watcher.ScanStats{
			Started:        started,
			Duration:       time.Since(started),
			TotalCount:     total,
			Pages:          acc.pages,
			DescribedPages: acc.describedPages,
			PagesFailed:    len(failures),
			Requests:       int(st.requests.Load()),
			Retries:        int(st.retries.Load()),
			Throttles:      int(st.throttles.Load()),
			Rejected:       acc.rejected,
			Duplicates:     acc.duplicates,
			Conflicts:      len(acc.conflicts),
			CountDrift:     acc.drift || acc.distinct()+acc.anonymous != total,
		},
	}
	for _, r := range acc.reasons {
		s.log.Warn("rejected item from a scan page", "reason", r)
	}
	if n := acc.rejected - len(acc.reasons); n > 0 {
		s.log.Warn("rejected more items from scan pages", "count", n)
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

// describeArgs is one listing or lookup request.
type describeArgs struct {
	offset, limit int
	ids           []string
}

// lane is one API a scan reads pages through: its caller (limiter, retry
// policy, action) and one attempt at a page.
type lane struct {
	call caller
	read func(context.Context, describeArgs) (page, error)
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

// describe sends one DescribeInstancesStatus request with retries (see
// caller) and reports a listing page's progress, and the page itself to
// st.onPage.
func (s *Scanner) describe(ctx context.Context, st *callStats, args describeArgs) (page, error) {
	started := time.Now() // before the limiter's wait: no later than the read
	var p page
	err := s.status.call.do(ctx, st, func() error {
		var err error
		p, err = s.describeOnce(ctx, args)
		return err
	})
	if err != nil {
		return page{}, err
	}
	if args.ids == nil {
		s.pageDone(st, p, started)
	}
	return p, nil
}

// readPage reads the listing page at off through l, whose limiter the
// caller has already waited for once, and reports it like describe.
func (s *Scanner) readPage(ctx context.Context, st *callStats, l *lane, off int) (page, error) {
	started := time.Now() // before the request: no later than the read
	var p page
	err := l.call.doReserved(ctx, st, func() error {
		var err error
		p, err = l.read(ctx, describeArgs{offset: off, limit: PageSize})
		return err
	})
	if err != nil {
		return page{}, err
	}
	s.pageDone(st, p, started)
	return p, nil
}

// pageDone reports a listing page's progress, and hands the page to
// st.onPage.
func (s *Scanner) pageDone(st *callStats, p page, started time.Time) {
	// The first page tells the total: report 1 of N, not 1 of 1.
	st.pagesTotal.CompareAndSwap(0, int64(pagesFor(min(p.total, s.maxInst))))
	s.obs.Progress(s.target, int(st.pagesDone.Add(1)), int(max(st.pagesTotal.Load(), 1)))
	if st.onPage != nil {
		st.pageMu.Lock()
		st.onPage(watcher.Page{Observations: p.items, Started: started, Done: time.Now()})
		st.pageMu.Unlock()
	}
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
