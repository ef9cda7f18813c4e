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

// ActionDescribeInstances is the API the Enricher calls; it has its own
// quota (QuotaKey with this action), apart from DescribeInstancesStatus.
const ActionDescribeInstances = "DescribeInstances"

// describeConcurrency bounds the DescribeInstances batches of one Describe
// in flight.
const describeConcurrency = 4

// EnricherConfig wires an Enricher. Client and Limiter are required.
type EnricherConfig struct {
	Target watcher.Target
	// Client talks to the target's region (see NewClient).
	Client *cvmapi.Client
	// Limiter paces DescribeInstances for the credential and endpoint
	// (share it between every target that spends the same quota).
	Limiter *Limiter
	// RefreshLimiter, if set, also paces the pages of List: the background
	// refresh takes only this share of the quota.
	RefreshLimiter *Limiter
	// MaxInstances is the most instances List pages through; default
	// DefaultMaxInstances.
	MaxInstances int
	Retry        RetryPolicy
	Logger       *slog.Logger
	// Observer is told about every request.
	Observer Observer
}

// Enricher describes a target's instances with DescribeInstances through
// the official SDK. It implements watcher.Enricher and is safe for
// concurrent use.
type Enricher struct {
	target  watcher.Target
	client  *cvmapi.Client
	call    caller
	refresh *Limiter
	maxInst int
	log     *slog.Logger
}

var _ watcher.Enricher = (*Enricher)(nil)

// NewEnricher returns an Enricher for cfg.Target.
func NewEnricher(cfg EnricherConfig) (*Enricher, error) {
	if cfg.Client == nil || cfg.Limiter == nil {
		return nil, errors.New("cvm enricher: Client and Limiter are required")
	}
	e := &Enricher{target: cfg.Target, client: cfg.Client, refresh: cfg.RefreshLimiter, maxInst: cfg.MaxInstances, log: cfg.Logger}
	if e.maxInst <= 0 {
		e.maxInst = DefaultMaxInstances
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("account", cfg.Target.Account, "region", cfg.Target.Region)
	e.call = caller{limiter: cfg.Limiter, retry: cfg.Retry.withDefaults(), obs: cfg.Observer, account: cfg.Target.Account, action: ActionDescribeInstances}
	if e.call.obs == nil {
		e.call.obs = nopObserver{}
	}
	return e, nil
}

// Describe asks DescribeInstances(InstanceIds) for ids, 100 per request, a
// few requests at once. An ID not of the documented form is not asked (the
// API would refuse its whole batch); items not asked for are ignored. The
// result holds what was described even when a batch failed; err then says
// which (it wraps watcher.ErrAuth for a missing permission).
func (e *Enricher) Describe(ctx context.Context, ids []string) ([]watcher.Enrichment, error) {
	var (
		batches [][]string
		batch   []string
		errs    []error
		seen    = make(map[string]bool, len(ids))
	)
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !documentedID.MatchString(id) {
			errs = append(errs, fmt.Errorf("instance id %s cannot be described", watcher.Quote(id)))
			continue
		}
		if batch = append(batch, id); len(batch) == PageSize {
			batches, batch = append(batches, batch), nil
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	var (
		mu   sync.Mutex
		out  []watcher.Enrichment
		wg   sync.WaitGroup
		next = make(chan []string)
	)
	var st callStats
	for range min(describeConcurrency, len(batches)) {
		wg.Go(func() {
			for b := range next {
				asked := make(map[string]bool, len(b))
				for _, id := range b {
					asked[id] = true
				}
				args := describeArgs{offset: 0, limit: PageSize, ids: b}
				got, _, _, err := e.describe(ctx, &st, args, asked)
				mu.Lock()
				out = append(out, got...)
				if err != nil {
					errs = append(errs, fmt.Errorf("%d ids from %s: %w", len(b), b[0], err))
				}
				mu.Unlock()
			}
		})
	}
	for _, b := range batches {
		next <- b
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return out, fmt.Errorf("describe instances of %s: %w", e.target, errors.Join(errs...))
	}
	return out, nil
}

// List pages through the target with DescribeInstances, one page at a
// time, each page first waiting for RefreshLimiter. It stops at the first
// page that fails (after its retries) or at an error from fn.
func (e *Enricher) List(ctx context.Context, fn func([]watcher.Enrichment) error) error {
	var st callStats
	for off := 0; off < e.maxInst; off += PageSize {
		if e.refresh != nil {
			if err := e.refresh.Wait(ctx); err != nil {
				return fmt.Errorf("list %s: rate limiter: %w", e.target, err)
			}
		}
		sent := time.Now()
		got, total, raw, err := e.describe(ctx, &st, describeArgs{offset: off, limit: PageSize}, nil)
		if err != nil {
			return fmt.Errorf("list %s offset %d: %w", e.target, off, err)
		}
		for i := range got {
			got[i].FetchedAt = sent
		}
		if len(got) > 0 {
			if err := fn(got); err != nil {
				return err
			}
		}
		if raw < PageSize || off+PageSize >= total {
			return nil
		}
	}
	return nil
}

// describe sends one DescribeInstances request with retries and returns
// the usable items (only those in asked, when asked is not nil), the
// answer's TotalCount and its raw item count.
func (e *Enricher) describe(ctx context.Context, st *callStats, args describeArgs, asked map[string]bool) (items []watcher.Enrichment, total, raw int, err error) {
	err = e.call.do(ctx, st, func() error {
		req := cvmapi.NewDescribeInstancesRequest()
		// Limit also with InstanceIds: its default of 20 applies to them too.
		offset, limit := int64(args.offset), int64(args.limit)
		req.Offset, req.Limit = &offset, &limit
		for _, id := range args.ids {
			req.InstanceIds = append(req.InstanceIds, &id)
		}
		resp, err := describeInstances(ctx, e.client, req)
		if err != nil {
			return err
		}
		var rejected []string
		items, total, raw, rejected, err = parseInstances(resp, asked)
		for _, r := range rejected {
			e.log.Warn("rejected item from DescribeInstances", "reason", r)
		}
		return err
	})
	return items, total, raw, err
}
