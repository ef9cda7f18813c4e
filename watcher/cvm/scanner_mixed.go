package cvm

import (
	"context"
	"errors"
	"sync"
	"time"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// mixState says whether a target's scans may mix the two APIs: not while
// paused. Safe for concurrent use.
type mixState struct {
	mu         sync.Mutex
	pause      time.Duration
	pauseUntil time.Time
}

// mixedAllowed reports whether this scan may read pages through
// DescribeInstances.
func (s *Scanner) mixedAllowed() bool {
	if s.described == nil {
		return false
	}
	s.mix.mu.Lock()
	defer s.mix.mu.Unlock()
	return !time.Now().Before(s.mix.pauseUntil)
}

// pauseMixed makes the target's scans read every page through
// DescribeInstancesStatus for the pause, and logs why, once per pause.
func (s *Scanner) pauseMixed(why string, args ...any) {
	s.mix.mu.Lock()
	now := time.Now()
	already := now.Before(s.mix.pauseUntil)
	s.mix.pauseUntil = now.Add(s.mix.pause)
	s.mix.mu.Unlock()
	if !already {
		s.log.Warn("mixed scans paused: every page goes through DescribeInstancesStatus for a while: "+why,
			append(args, "pause", s.mix.pause)...)
	}
}

// mixGate holds the outcome of the order probe: done is closed once ok is
// set.
type mixGate struct {
	done chan struct{}
	ok   bool
}

// wait reports whether the probe found the APIs agree; false also if ctx
// ends first.
func (g *mixGate) wait(ctx context.Context) bool {
	select {
	case <-g.done:
		return g.ok
	case <-ctx.Done():
		return false
	}
}

// probeOrder checks, in the background, the one assumption mixed paging
// rests on (see doc.go): it reads page 0 through DescribeInstances, one
// attempt, and compares the IDs with first's (page 0 through
// DescribeInstancesStatus). The probe's items are not used otherwise. A
// refusal (auth, rejected request) or another order pauses mixed scans;
// another failure leaves only this scan on DescribeInstancesStatus.
// Only its wait for a turn at the limiter ends with drainCtx (the scan has
// no page left to mix); a probe sent is answered, under ctx, so that a
// refusal is not lost.
func (s *Scanner) probeOrder(ctx, drainCtx context.Context, st *callStats, first page) *mixGate {
	g := &mixGate{done: make(chan struct{})}
	go func() {
		defer close(g.done)
		c := s.described.call
		c.retry.MaxAttempts = 1
		if c.limiter.Wait(drainCtx) != nil {
			return
		}
		var p page
		err := c.doReserved(ctx, st, func() error {
			var err error
			p, err = s.describeInstancesOnce(ctx, describeArgs{offset: 0, limit: PageSize})
			return err
		})
		switch {
		case err == nil && (!sameOrder(first.ids, p.ids) || !closeTotals(first.total, p.total)):
			s.pauseMixed("DescribeInstances lists page 0 otherwise than DescribeInstancesStatus (order, instances or TotalCount)",
				"status_ids", len(first.ids), "describe_ids", len(p.ids), "status_total", first.total, "describe_total", p.total)
		case err == nil:
			g.ok = true
		case errors.Is(err, watcher.ErrAuth) || errors.Is(err, ErrRejected):
			s.pauseMixed("DescribeInstances refused the request", "err", err)
		}
	}()
	return g
}

// sameOrder reports whether two reads of page 0 list the same instances in
// the same order, allowing for the fleet changing between them: at least
// 90% of the longer list is in both (an empty or short answer from one API
// is not agreement: it may see less of the fleet, a narrower permission),
// and the IDs in both come in the same relative order.
func sameOrder(a, b []string) bool {
	pos := make(map[string]int, len(b))
	for i, id := range b {
		pos[id] = i
	}
	common, last := 0, -1
	for _, id := range a {
		i, ok := pos[id]
		if !ok {
			continue
		}
		if i < last {
			return false
		}
		common, last = common+1, i
	}
	return common*10 >= max(len(a), len(b))*9
}

// closeTotals reports whether two TotalCounts read moments apart can be of
// the same fleet: within 10% of the larger (and at most 100 apart for a
// small fleet). APIs that count different fleets must not be mixed.
func closeTotals(a, b int) bool {
	d := max(a-b, b-a)
	return d*10 <= max(a, b) || d <= 100 && a > 0 && b > 0
}

// describeInstancesOnce reads one listing page through DescribeInstances
// (one attempt; see parseDescribePage).
func (s *Scanner) describeInstancesOnce(ctx context.Context, args describeArgs) (page, error) {
	req := cvmapi.NewDescribeInstancesRequest()
	// Limit always: DescribeInstances' default is 20, not 100.
	offset, limit := int64(args.offset), int64(args.limit)
	req.Offset, req.Limit = &offset, &limit
	sent := time.Now()
	resp, err := describeInstances(ctx, s.client, req)
	if err != nil {
		return page{}, err
	}
	return parseDescribePage(args.offset, resp, sent)
}
