package cvm

import (
	"fmt"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// page is one validated DescribeInstancesStatus answer.
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
}

// maxTotalCount is the largest TotalCount parsePage accepts at all; a scan
// applies its own, lower, MaxInstances.
const maxTotalCount = 100_000_000

// parsePage validates an SDK response. It fails only when the answer as a
// whole is unusable (the caller retries); a bad item is rejected and counted,
// never fatal, and never becomes an observation.
func parsePage(offset int, resp *cvmapi.DescribeInstancesStatusResponse) (page, error) {
	p := page{offset: offset}
	if resp == nil || resp.Response == nil {
		return p, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	r := resp.Response
	if r.TotalCount == nil {
		return p, fmt.Errorf("%w: no TotalCount", ErrMalformed)
	}
	if *r.TotalCount < 0 || *r.TotalCount > maxTotalCount {
		return p, fmt.Errorf("%w: TotalCount %d out of range", ErrMalformed, *r.TotalCount)
	}
	p.total = int(*r.TotalCount)
	if r.InstanceStatusSet == nil && p.total > offset {
		return p, fmt.Errorf("%w: InstanceStatusSet is null with TotalCount %d at offset %d", ErrMalformed, p.total, offset)
	}
	p.raw = len(r.InstanceStatusSet)
	p.items = make([]watcher.Observation, 0, len(r.InstanceStatusSet))
	for i, it := range r.InstanceStatusSet {
		if it == nil || it.InstanceId == nil || it.InstanceState == nil {
			p.reject(fmt.Sprintf("item %d at offset %d: null item, InstanceId or InstanceState", i, offset))
			if it != nil && it.InstanceId != nil && watcher.ValidateToken(*it.InstanceId) == nil {
				p.ids = append(p.ids, *it.InstanceId)
			} else {
				p.anonymous++
			}
			continue
		}
		o := watcher.Observation{InstanceID: *it.InstanceId, State: watcher.State(*it.InstanceState)}
		if err := watcher.ValidateObservation(o); err != nil {
			p.reject(fmt.Sprintf("item %d at offset %d: %v", i, offset, err))
			if watcher.ValidateToken(o.InstanceID) == nil {
				p.ids = append(p.ids, o.InstanceID)
			} else {
				p.anonymous++
			}
			continue
		}
		p.items = append(p.items, o)
		p.ids = append(p.ids, o.InstanceID)
	}
	return p, nil
}

// maxRejectReasons bounds the reasons kept per page for the log.
const maxRejectReasons = 5

func (p *page) reject(reason string) {
	p.rejected++
	if len(p.reasons) < maxRejectReasons {
		p.reasons = append(p.reasons, reason)
	}
}
