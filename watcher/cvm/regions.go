package cvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// The Region API call that resolves `regions: all`.
const (
	RegionService         = "region"
	RegionVersion         = "2022-06-27"
	ActionDescribeRegions = "DescribeRegions"
)

// RegionLister lists the regions in which CVM is offered to a credential,
// through the Region API (DescribeRegions with Product=cvm). Safe for
// concurrent use.
type RegionLister struct {
	client *common.Client
}

// NewRegionLister returns a lister. cfg.Region is ignored (the Region API
// is global); cfg.Endpoint overrides region.tencentcloudapi.com.
func NewRegionLister(cfg ClientConfig) (*RegionLister, error) {
	if cfg.Credential == nil {
		return nil, errors.New("region lister: no credential")
	}
	cfg = cfg.withDefaults()
	cpf, err := safeProfile(cfg.Endpoint, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	client := common.NewCommonClient(cfg.Credential, "", cpf)
	client.WithHttpTransport(newTransport(cfg))
	client.WithDebug(false)
	return &RegionLister{client: client}, nil
}

// List returns, sorted, the regions whose RegionState is AVAILABLE. A region
// name that is not a safe subject token is an error, never a target.
func (l *RegionLister) List(ctx context.Context) ([]string, error) {
	req := tchttp.NewCommonRequest(RegionService, RegionVersion, ActionDescribeRegions)
	if err := req.SetActionParameters(map[string]any{"Product": "cvm"}); err != nil {
		return nil, err
	}
	req.SetContext(ctx)
	resp := tchttp.NewCommonResponse()
	if err := sendGuarded(l.client, req, resp); err != nil {
		err, _ := wrapError(ctx, ActionDescribeRegions, err)
		return nil, err
	}
	var body struct {
		Response *struct {
			RegionSet []*struct {
				Region      *string
				RegionState *string
			}
		}
	}
	if err := json.Unmarshal(resp.GetBody(), &body); err != nil || body.Response == nil {
		return nil, fmt.Errorf("%s: %w", ActionDescribeRegions, ErrMalformed)
	}
	var out []string
	for _, r := range body.Response.RegionSet {
		if r == nil || r.Region == nil {
			continue
		}
		if r.RegionState != nil && *r.RegionState != "AVAILABLE" {
			continue
		}
		if err := watcher.ValidateToken(*r.Region); err != nil {
			return nil, fmt.Errorf("%s: region %s: %w", ActionDescribeRegions, watcher.Quote(*r.Region), err)
		}
		out = append(out, *r.Region)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
