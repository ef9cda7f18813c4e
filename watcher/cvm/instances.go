package cvm

import (
	"fmt"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// parseInstances validates a DescribeInstances answer and maps each usable
// item to an Enrichment (values as the API gave them; the watcher bounds
// them). It fails only when the answer as a whole is unusable; an item
// without a well-formed InstanceId, one not in asked (when asked is not
// nil) or a second item of one ID is left out, and the first few reasons
// are returned for the log. Every other field may be null.
func parseInstances(resp *cvmapi.DescribeInstancesResponse, asked map[string]bool) (items []watcher.Enrichment, total, raw int, rejected []string, err error) {
	if resp == nil || resp.Response == nil {
		return nil, 0, 0, nil, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	r := resp.Response
	if r.TotalCount == nil || *r.TotalCount < 0 || *r.TotalCount > maxTotalCount {
		return nil, 0, 0, nil, fmt.Errorf("%w: TotalCount missing or out of range", ErrMalformed)
	}
	seen := map[string]bool{}
	for i, it := range r.InstanceSet {
		if it == nil || it.InstanceId == nil || watcher.ValidateToken(*it.InstanceId) != nil {
			if len(rejected) < maxRejectReasons {
				rejected = append(rejected, fmt.Sprintf("item %d: null item or unusable InstanceId", i))
			}
			continue
		}
		id := *it.InstanceId
		if seen[id] || (asked != nil && !asked[id]) {
			continue
		}
		seen[id] = true
		items = append(items, enrichmentOf(it))
	}
	return items, int(*r.TotalCount), len(r.InstanceSet), rejected, nil
}

// enrichmentOf maps the fields of issue 9 from one SDK Instance.
func enrichmentOf(it *cvmapi.Instance) watcher.Enrichment {
	e := watcher.Enrichment{
		InstanceID: *it.InstanceId,
		Instance: watcher.Instance{
			Name:           str(it.InstanceName),
			InstanceType:   str(it.InstanceType),
			PrivateIPs:     strs(it.PrivateIpAddresses),
			PublicIPs:      strs(it.PublicIpAddresses),
			ChargeType:     str(it.InstanceChargeType),
			CreatedTime:    str(it.CreatedTime),
			ExpiredTime:    str(it.ExpiredTime),
			RestrictState:  str(it.RestrictState),
			IsolatedSource: str(it.IsolatedSource),
		},
		Operation: watcher.Operation{
			Name:      str(it.LatestOperation),
			State:     str(it.LatestOperationState),
			RequestID: str(it.LatestOperationRequestId),
			Error:     str(it.LatestOperationErrorMsg),
		},
	}
	if st := str(it.InstanceState); watcher.ValidateToken(st) == nil {
		e.State = watcher.State(st)
	}
	if it.Placement != nil {
		e.Instance.Zone = str(it.Placement.Zone)
	}
	for _, t := range it.Tags {
		if t != nil && t.Key != nil {
			e.Instance.Tags = append(e.Instance.Tags, watcher.Tag{Key: *t.Key, Value: str(t.Value)})
		}
	}
	return e
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func strs(l []*string) []string {
	var out []string
	for _, p := range l {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}
