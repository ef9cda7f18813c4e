package cvm

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// documentedID is the instance ID form the API accepts in InstanceIds; any
// other ID makes it reject the whole request.
var documentedID = regexp.MustCompile(`^ins-[a-z0-9]{8}$`)

// Lookup asks for ids with DescribeInstancesStatus(InstanceIds), 100 per
// request. An ID is Absent only if its batch succeeded and did not list it;
// an ID listed with an unusable state is in neither list, and so is an ID not
// of the documented form (the API would refuse the whole batch for it).
func (s *Scanner) Lookup(ctx context.Context, ids []string) (watcher.LookupResult, error) {
	var (
		res      watcher.LookupResult
		st       callStats
		failures []error
		batch    []string
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		found, absent, err := s.lookupBatch(ctx, &st, batch)
		res.Found = append(res.Found, found...)
		res.Absent = append(res.Absent, absent...)
		if err != nil {
			failures = append(failures, err)
		}
		batch = batch[:0]
	}
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if !documentedID.MatchString(id) {
			failures = append(failures, fmt.Errorf("instance id %s cannot be looked up", watcher.Quote(id)))
			continue
		}
		batch = append(batch, id)
		if len(batch) == PageSize {
			flush()
		}
	}
	flush()
	if len(failures) > 0 {
		return res, fmt.Errorf("lookup %s: %w", s.target, errors.Join(failures...))
	}
	return res, nil
}

func (s *Scanner) lookupBatch(ctx context.Context, st *callStats, batch []string) (found []watcher.Observation, absent []string, err error) {
	p, err := s.describe(ctx, st, describeArgs{offset: 0, limit: PageSize, ids: batch})
	if err != nil {
		return nil, nil, fmt.Errorf("%d ids from %s: %w", len(batch), batch[0], err)
	}
	asked := make(map[string]bool, len(batch)) // id -> listed
	for _, id := range batch {
		asked[id] = false
	}
	states := map[string]watcher.State{}
	conflict := map[string]bool{}
	for _, o := range p.items {
		if _, ok := asked[o.InstanceID]; !ok {
			continue // not asked for: ignore rather than trust
		}
		if prev, ok := states[o.InstanceID]; ok && prev != o.State {
			conflict[o.InstanceID] = true
		}
		states[o.InstanceID] = o.State
	}
	for _, id := range p.ids {
		if _, ok := asked[id]; ok {
			asked[id] = true
		}
	}
	for _, id := range batch {
		switch st, ok := states[id]; {
		case ok && !conflict[id]:
			found = append(found, watcher.Observation{InstanceID: id, State: st})
		case !asked[id]:
			absent = append(absent, id)
		}
	}
	for _, r := range p.reasons {
		s.log.Warn("rejected item from DescribeInstancesStatus lookup", "reason", r)
	}
	// An item we could not identify, or fewer items than TotalCount, means
	// the missing ID might be there after all: prove nothing absent.
	if p.anonymous > 0 || p.total > p.raw {
		return found, nil, fmt.Errorf("%d ids from %s: %w: %d unidentifiable items, TotalCount %d for %d items",
			len(batch), batch[0], ErrMalformed, p.anonymous, p.total, p.raw)
	}
	return found, absent, nil
}
