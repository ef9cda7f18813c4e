package cvm

import (
	"fmt"
	"time"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// parseDescribePage validates a DescribeInstances answer to a listing
// request (Offset, Limit) exactly as parsePage validates one of
// DescribeInstancesStatus: the same checks of the answer as a whole, and of
// each item's InstanceId and InstanceState, with the same outcomes (an
// unusable item never becomes an observation; its well-formed ID is still
// remembered). Each usable item also gives an Enrichment, built as the
// Enricher builds it (enrichmentOf), with FetchedAt sent, the time its
// request was sent, and State the state this page reports.
func parseDescribePage(offset int, resp *cvmapi.DescribeInstancesResponse, sent time.Time) (page, error) {
	if resp == nil || resp.Response == nil {
		return page{offset: offset}, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	r := resp.Response
	p, err := newPage(offset, r.TotalCount, r.InstanceSet == nil, "InstanceSet")
	if err != nil {
		return p, err
	}
	p.raw = len(r.InstanceSet)
	p.items = make([]watcher.Observation, 0, len(r.InstanceSet))
	p.described = make([]watcher.Enrichment, 0, len(r.InstanceSet))
	for i, it := range r.InstanceSet {
		if it == nil {
			p.item(i, nil, nil)
			continue
		}
		if !p.item(i, it.InstanceId, it.InstanceState) {
			continue
		}
		e := enrichmentOf(it)
		e.FetchedAt = sent
		e.State = p.items[len(p.items)-1].State
		p.described = append(p.described, e)
	}
	return p, nil
}
