package cvmsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// The Region API action the simulator also serves, so `regions: all` can be
// tested: DescribeRegions of region.tencentcloudapi.com, version 2022-06-27,
// signed with the credential scope service "region".
const (
	ActionDescribeRegions = "DescribeRegions"
	RegionAPIVersion      = "2022-06-27"
	regionService         = "region"
)

// SetAdvertisedRegions sets the regions DescribeRegions answers (default:
// Options.Regions). A region advertised but not in Options.Regions has an
// empty fleet, as a real region where the account has no instance.
func (s *Server) SetAdvertisedRegions(regions []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advertised = slices.Clone(regions)
}

// serveDescribeRegions answers DescribeRegions: Product is required and must
// be a product the simulator knows ("cvm").
func (s *Server) serveDescribeRegions(r *http.Request, body []byte, rid string) reply {
	var p struct {
		Product *string `json:"Product"`
	}
	if r.Method == http.MethodGet {
		if v := r.URL.Query().Get("Product"); v != "" {
			p.Product = &v
		}
	} else if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return errorReply(errorf(CodeInvalidParameter, "The request body is not valid for DescribeRegions."), rid)
		}
	}
	switch {
	case p.Product == nil:
		return errorReply(errorf(CodeMissingParameter, "The request is missing a required parameter `Product`."), rid)
	case *p.Product != "cvm":
		return errorReply(errorf(CodeInvalidParameterValue, "The product `"+clip(*p.Product)+"` is not supported by this simulator."), rid)
	}
	s.mu.Lock()
	regions := s.advertised
	if regions == nil {
		regions = s.opts.Regions
	}
	regions = slices.Clone(regions)
	s.mu.Unlock()
	type region struct {
		Region      string `json:"Region"`
		RegionName  string `json:"RegionName"`
		RegionState string `json:"RegionState"`
	}
	var out struct {
		Response struct {
			TotalCount int      `json:"TotalCount"`
			RegionSet  []region `json:"RegionSet"`
			RequestID  string   `json:"RequestId"`
		} `json:"Response"`
	}
	out.Response.RegionSet = []region{}
	for _, r := range regions {
		out.Response.RegionSet = append(out.Response.RegionSet, region{Region: r, RegionName: r, RegionState: "AVAILABLE"})
	}
	out.Response.TotalCount = len(regions)
	out.Response.RequestID = rid
	b, err := json.Marshal(out)
	if err != nil {
		return errorReply(errorf(CodeInternalError, "encode"), rid)
	}
	return jsonReply(b, "ok")
}
