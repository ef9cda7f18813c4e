package cvm

import (
	"fmt"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// page is one validated listing answer, of DescribeInstancesStatus or
// DescribeInstances (see parseDescribePage).
type page struct {
	offset int
	total  int
	// raw counts the items in the answer, usable or not.
	raw   int
	items []watcher.Observation
	// rejected counts unusable items; reasons keeps the first few for the log.
	rejected int
	reasons  []string
	// anonymous counts rejected items that named no well-formed ID.
	anonymous int
	// ids holds every well-formed ID the answer named, even with an
	// unusable state: such an instance exists and must never be called absent.
	ids []string
	// described holds, for a DescribeInstances page, the enrichment of
	// each usable item (the items of the same ID and state), in the
	// answer's order; nil for a DescribeInstancesStatus page.
	described []watcher.Enrichment
}

// maxTotalCount is the largest TotalCount parsePage accepts at all; a scan
// applies its own, lower, MaxInstances.
const maxTotalCount = 100_000_000

// parsePage validates an SDK response. It fails only when the answer as a
// whole is unusable (the caller retries); a bad item is rejected and counted,
// never fatal, and never becomes an observation.
func parsePage(offset int, resp *cvmapi.DescribeInstancesStatusResponse) (page, error) {
	if resp == nil || resp.Response == nil {
		return page{offset: offset}, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	r := resp.Response
	p, err := newPage(offset, r.TotalCount, r.InstanceStatusSet == nil, "InstanceStatusSet")
	if err != nil {
		return p, err
	}
	p.raw = len(r.InstanceStatusSet)
	p.items = make([]watcher.Observation, 0, len(r.InstanceStatusSet))
	for i, it := range r.InstanceStatusSet {
		if it == nil {
			p.item(i, nil, nil)
			continue
		}
		p.item(i, it.InstanceId, it.InstanceState)
	}
	return p, nil
}

// newPage checks what the answers of both APIs share: a TotalCount in
// range, and a set (named set; nullSet when it is JSON null) that is not
// null while TotalCount says items remain past offset.
func newPage(offset int, total *int64, nullSet bool, set string) (page, error) {
	p := page{offset: offset}
	if total == nil {
		return p, fmt.Errorf("%w: no TotalCount", ErrMalformed)
	}
	if *total < 0 || *total > maxTotalCount {
		return p, fmt.Errorf("%w: TotalCount %d out of range", ErrMalformed, *total)
	}
	p.total = int(*total)
	if nullSet && p.total > offset {
		return p, fmt.Errorf("%w: %s is null with TotalCount %d at offset %d", ErrMalformed, set, p.total, offset)
	}
	return p, nil
}

// item checks the i-th item of the answer, given by its InstanceId and
// InstanceState, the same way for either API: a usable one becomes an
// observation; any other is rejected and counted, and its ID, if well
// formed, is still remembered (the instance exists and must never be called
// absent). It reports whether the item was usable.
func (p *page) item(i int, id, state *string) bool {
	if id == nil || state == nil {
		p.reject(fmt.Sprintf("item %d at offset %d: null item, InstanceId or InstanceState", i, p.offset))
		p.name(id)
		return false
	}
	o := watcher.Observation{InstanceID: *id, State: watcher.State(*state)}
	if err := watcher.ValidateObservation(o); err != nil {
		p.reject(fmt.Sprintf("item %d at offset %d: %v", i, p.offset, err))
		p.name(id)
		return false
	}
	p.items = append(p.items, o)
	p.ids = append(p.ids, o.InstanceID)
	return true
}

// name remembers the ID of a rejected item if it is well formed, and counts
// it as anonymous if not.
func (p *page) name(id *string) {
	if id != nil && watcher.ValidateToken(*id) == nil {
		p.ids = append(p.ids, *id)
	} else {
		p.anonymous++
	}
}

// maxRejectReasons bounds the reasons kept per page for the log.
const maxRejectReasons = 5

func (p *page) reject(reason string) {
	p.rejected++
	if len(p.reasons) < maxRejectReasons {
		p.reasons = append(p.reasons, reason)
	}
}
