package cvmsim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Paging and size limits of both Describe actions.
const (
	defaultLimit    = 20
	maxLimit        = 100
	maxInstanceIDs  = 100
	maxFilters      = 10
	maxFilterValues = 5
)

// validate checks the parameters the way the real API does and fills in the
// defaults (Offset 0, Limit 20).
func validate(p *params) *apiError {
	if p.hasIDs && p.hasFilters {
		return errorf(CodeInvalidParameter, "The parameters `InstanceIds` and `Filters` cannot be specified at the same time.")
	}
	if len(p.instanceIDs) > maxInstanceIDs {
		return errorf(CodeLimitExceeded, fmt.Sprintf("The number of `InstanceIds` (%d) exceeds the limit of %d.", len(p.instanceIDs), maxInstanceIDs))
	}
	for _, id := range p.instanceIDs {
		if !isWellFormedID(id) {
			return errorf(CodeInstanceIDMalformed, fmt.Sprintf("The instance ID `%s` is malformed; expected ins-xxxxxxxx.", clip(id)))
		}
	}
	if !p.hasOffset {
		p.offset = 0
	}
	if p.offset < 0 {
		return errorf(CodeInvalidParameterValue, fmt.Sprintf("The value `%d` of parameter `Offset` must not be negative.", p.offset))
	}
	if !p.hasLimit {
		p.limit = defaultLimit
	}
	if p.limit < 1 || p.limit > maxLimit {
		return errorf(CodeInvalidParameterValue, fmt.Sprintf("The value `%d` of parameter `Limit` must be between 1 and %d.", p.limit, maxLimit))
	}
	if len(p.filters) > maxFilters {
		return errorf(CodeInvalidFilter, fmt.Sprintf("At most %d `Filters` are allowed per request.", maxFilters))
	}
	for i, f := range p.filters {
		switch {
		case !knownFilter(f.name):
			return errorf(CodeInvalidFilter, fmt.Sprintf("The filter `Filters.%d.Name` = `%s` is not supported.", i, clip(f.name)))
		case len(f.values) == 0:
			return errorf(CodeInvalidFilter, fmt.Sprintf("The filter `%s` needs at least one value.", clip(f.name)))
		case len(f.values) > maxFilterValues:
			return errorf(CodeFilterValueLimitExceeded, fmt.Sprintf("The filter `%s` has more than %d values.", clip(f.name), maxFilterValues))
		}
	}
	return nil
}

func knownFilter(name string) bool {
	switch name {
	case "zone", "instance-state", "instance-name", "instance-id", "tag-key", "tag-value",
		"project-id", "instance-charge-type", "private-ip-address", "public-ip-address",
		"vpc-id", "subnet-id":
		return true
	}
	return strings.HasPrefix(name, "tag:") && len(name) > len("tag:")
}

// matches reports whether in passes f: any of the filter's values matches.
// instance-name matches by substring, like the console's fuzzy name search.
func (in *instance) matches(f filter) bool {
	for _, v := range f.values {
		switch {
		case f.name == "zone" && in.zone == v,
			f.name == "instance-state" && in.state == v,
			f.name == "instance-name" && strings.Contains(in.name, v),
			f.name == "instance-id" && in.id == v,
			f.name == "project-id" && strconv.FormatInt(in.projectID, 10) == v,
			f.name == "instance-charge-type" && in.chargeType == v,
			f.name == "private-ip-address" && in.privateIP == v,
			f.name == "public-ip-address" && in.publicIP != "" && in.publicIP == v,
			f.name == "vpc-id" && in.vpcID == v,
			f.name == "subnet-id" && in.subnetID == v:
			return true
		}
		for _, t := range in.tags {
			switch {
			case f.name == "tag-key" && t.Key == v,
				f.name == "tag-value" && t.Value == v,
				strings.HasPrefix(f.name, "tag:") && t.Key == f.name[len("tag:"):] && t.Value == v:
				return true
			}
		}
	}
	return false
}

// matchingLocked returns the instances of region selected by p, in listing
// order. A region that is real but not served has none.
func (s *Server) matchingLocked(region string, p params) []*instance {
	all := s.fleet.listing(region)
	if !p.hasIDs && !p.hasFilters {
		return all
	}
	want := map[string]bool{}
	for _, id := range p.instanceIDs {
		want[id] = true
	}
	out := all[:0]
outer:
	for _, in := range all {
		if p.hasIDs && !want[in.id] {
			continue
		}
		for _, f := range p.filters {
			if !in.matches(f) {
				continue outer
			}
		}
		out = append(out, in)
	}
	return out
}

// pageItem is one item of a page: a copy of the instance, plus the nulls a
// fault asks for.
type pageItem struct {
	inst      instance
	nullID    bool
	nullState bool
}

// page is one answer of a Describe action before encoding.
type page struct {
	total   int64
	items   []pageItem
	nullSet bool
}

// describeLocked answers a validated Describe request: fleet faults first
// (they really change the fleet), then the page, then the data faults.
func (s *Server) describeLocked(env envelope, p params, m faultMatch) page {
	now := s.now()
	// Churn transitions are recorded in History at their due time: apply
	// those due by now, so that no answer shows a state History says was
	// already left (the churn ticker alone lags up to churnTick).
	s.applyDueLocked(now)
	s.fireLocked(m, false, func(f Fault) bool {
		if _, served := s.fleet.regions[env.region]; !served {
			return false
		}
		switch f.Kind {
		case FaultShiftInsert:
			state := f.State
			if state == "" || state == Absent {
				state = StateRunning
			}
			s.fleet.add(s.genInstanceLocked(env.region, s.newIDLocked(), state, now), now)
			return true
		case FaultShiftRelease:
			match := s.matchingLocked(env.region, p)
			if p.offset == 0 || len(match) == 0 {
				return false
			}
			s.fleet.remove(match[0], now)
			return true
		}
		return false
	}, FaultShiftInsert, FaultShiftRelease)

	match := s.matchingLocked(env.region, p)
	pg := page{total: int64(len(match)), items: []pageItem{}}
	if p.offset < int64(len(match)) {
		end := p.offset + p.limit
		if end > int64(len(match)) {
			end = int64(len(match))
		}
		for _, in := range match[p.offset:end] {
			c := *in
			c.plan = nil
			pg.items = append(pg.items, pageItem{inst: c})
		}
	}
	s.fireLocked(m, false, func(f Fault) bool { return applyDataFault(&pg, f) },
		FaultNullFields, FaultLyingTotal, FaultDuplicate, FaultUnknownState, FaultHostileIDs)
	return pg
}

// hostileIDs are the IDs FaultHostileIDs adds: NATS subject metacharacters,
// a space, an overlong ID and the empty string.
func hostileIDs() []string {
	return []string{"ins-a.b>*", "ins-with space", "ins-" + strings.Repeat("x", 296), ""}
}

// applyDataFault changes pg as f says and reports whether it did anything.
func applyDataFault(pg *page, f Fault) bool {
	switch f.Kind {
	case FaultNullFields:
		switch len(pg.items) {
		case 0:
			pg.nullSet = true
		case 1:
			pg.items[0].nullID = true
			pg.items[0].nullState = true
		default:
			pg.items[0].nullID = true
			pg.items[1].nullState = true
		}
		return true
	case FaultLyingTotal:
		pg.total = int64(f.TotalCount)
		return true
	case FaultDuplicate:
		if len(pg.items) == 0 {
			return false
		}
		dup := pg.items[0]
		if f.State != "" {
			dup.inst.state = f.State
		}
		pg.items = append(pg.items, dup)
		return true
	case FaultUnknownState:
		state := f.State
		if state == "" {
			state = "HIBERNATING"
		}
		for i := range pg.items {
			pg.items[i].inst.state = state
		}
		return len(pg.items) > 0
	case FaultHostileIDs:
		for _, id := range hostileIDs() {
			pg.items = append(pg.items, pageItem{inst: instance{
				id: id, state: StateRunning, zone: "ap-guangzhou-3", name: "hostile",
				itype: "S5.MEDIUM4", chargeType: "POSTPAID_BY_HOUR",
				latestOp: "RunInstances", latestOpState: "SUCCESS",
				created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
			}})
		}
		pg.total += int64(len(hostileIDs()))
		return true
	}
	return false
}
