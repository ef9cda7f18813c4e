package cvmsim

import (
	"fmt"
	"slices"
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

// windowLocked returns how many instances of region p selects and those of
// its page (Offset, Limit), in listing order. A request with neither IDs nor
// filters reads the page straight from the region's list, so that paging
// through a large fleet costs each request its page, not the fleet.
func (s *Server) windowLocked(region string, p params) (int64, []*instance) {
	if p.hasIDs || p.hasFilters {
		match := s.matchingLocked(region, p)
		if p.offset >= int64(len(match)) {
			return int64(len(match)), nil
		}
		return int64(len(match)), match[p.offset:min(p.offset+p.limit, int64(len(match)))]
	}
	list := s.fleet.regions[region] // ascending seq; the listing is newest first
	n := int64(len(list))
	var out []*instance
	for i := p.offset; i < min(p.offset+p.limit, n); i++ {
		out = append(out, list[n-1-i])
	}
	return n, out
}

// pageItem is one item of a page: a copy of the instance, plus the nulls a
// fault asks for.
type pageItem struct {
	inst        instance
	nullID      bool
	nullState   bool
	nullDetails bool
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
			s.fleet.cancel(match[0])
			s.fleet.remove(match[0], now)
			return true
		}
		return false
	}, FaultShiftInsert, FaultShiftRelease)

	reversed := false
	s.fireLocked(m, true, func(Fault) bool {
		reversed = true
		return true
	}, FaultOtherOrder)
	var total int64
	var window []*instance
	if reversed { // the matching set listed oldest first
		match := slices.Clone(s.matchingLocked(env.region, p))
		slices.Reverse(match)
		total = int64(len(match))
		if p.offset < total {
			window = match[p.offset:min(p.offset+p.limit, total)]
		}
	} else {
		total, window = s.windowLocked(env.region, p)
	}
	pg := page{total: total, items: []pageItem{}}
	for _, in := range window {
		c := *in
		c.plan = nil
		pg.items = append(pg.items, pageItem{inst: c})
	}
	s.fireLocked(m, false, func(f Fault) bool { return applyDataFault(&pg, f, env.action) },
		FaultNullFields, FaultLyingTotal, FaultDuplicate, FaultUnknownState, FaultHostileIDs,
		FaultNullDetails, FaultHostileValues)
	return pg
}

// hostileIDs are the IDs FaultHostileIDs adds: NATS subject metacharacters,
// a space, an overlong ID and the empty string.
func hostileIDs() []string {
	return []string{"ins-a.b>*", "ins-with space", "ins-" + strings.Repeat("x", 296), ""}
}

// hostileValues are strings no consumer should trust: NATS subject
// metacharacters, control characters, NUL, a terminal escape, a
// right-to-left override, quotes and markup, bytes that are not UTF-8
// (encoded as U+FFFD, as encoding/json does), non-ASCII text, 10,000 bytes
// and nothing.
func hostileValues() []string {
	return []string{
		"a.b>*",
		"line\nbreak\ttab\r",
		"\x1b[31mred\x1b[0m\x1b]0;title\x07",
		"nul\x00byte",
		"\u202eevil\u202c",
		"\"quoted\" \\ `tick` <b>html</b> {{.tmpl}} ${env} *bold* @all",
		"\xff\xfe not UTF-8",
		"emoji \U0001F680 中文 Ünïcødé",
		strings.Repeat("long-", 2000),
		"",
	}
}

// hostileTags are the 60 tags FaultHostileValues gives an item.
func hostileTags() []Tag {
	vals := hostileValues()
	tags := make([]Tag, 0, 60)
	for i, v := range vals {
		tags = append(tags, Tag{Key: fmt.Sprintf("hostile-%d", i), Value: v})
	}
	tags = append(tags,
		Tag{Key: "a.b>*", Value: "subject metacharacters in the key"},
		Tag{Key: "", Value: "empty key"},
		Tag{Key: strings.Repeat("k", 300), Value: "300-byte key"},
		Tag{Key: "dup", Value: "first"},
		Tag{Key: "dup", Value: "second"},
		Tag{Key: "line\nkey\x1b[0m", Value: "control characters in the key"},
	)
	for i := 0; len(tags) < 60; i++ {
		tags = append(tags, Tag{Key: fmt.Sprintf("filler-%02d", i), Value: "x"})
	}
	return tags
}

// applyDataFault changes pg, a page of action, as f says and reports
// whether it did anything.
func applyDataFault(pg *page, f Fault, action string) bool {
	switch f.Kind {
	case FaultNullDetails:
		if action != ActionDescribeInstances || len(pg.items) == 0 {
			return false
		}
		for i := range pg.items {
			pg.items[i].nullDetails = true
		}
		return true
	case FaultHostileValues:
		if action != ActionDescribeInstances || len(pg.items) == 0 {
			return false
		}
		for i := range pg.items {
			pg.items[i].inst.name = "\x1b[2J" + hostileValues()[i%len(hostileValues())] + "\u202e"
			pg.items[i].inst.tags = append(append([]Tag(nil), pg.items[i].inst.tags...), hostileTags()...)
		}
		return true
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
				restrict: "NORMAL", isolated: "NOTISOLATED",
				latestOp: "RunInstances", latestOpState: "SUCCESS",
				created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
			}})
		}
		pg.total += int64(len(hostileIDs()))
		return true
	}
	return false
}
