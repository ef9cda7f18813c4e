package cvmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// The two actions the simulator serves, and the API version it speaks.
const (
	ActionDescribeInstancesStatus = "DescribeInstancesStatus"
	ActionDescribeInstances       = "DescribeInstances"
	APIVersion                    = "2017-03-12"
)

// envelope holds the common parameters, which API 3.0 carries in headers.
type envelope struct {
	action       string
	version      string
	region       string
	timestampRaw string
	timestamp    int64
}

// parseEnvelope reads X-TC-Action, X-TC-Version, X-TC-Region and
// X-TC-Timestamp. A missing region is reported later, after authentication.
func parseEnvelope(r *http.Request) (envelope, *apiError) {
	e := envelope{
		action:       r.Header.Get("X-TC-Action"),
		version:      r.Header.Get("X-TC-Version"),
		region:       r.Header.Get("X-TC-Region"),
		timestampRaw: r.Header.Get("X-TC-Timestamp"),
	}
	switch {
	case e.action == "":
		return e, errorf(CodeMissingParameter, "The request is missing a required parameter `Action` (header X-TC-Action).")
	case e.version == "":
		return e, errorf(CodeMissingParameter, "The request is missing a required parameter `Version` (header X-TC-Version).")
	case e.timestampRaw == "":
		return e, errorf(CodeMissingParameter, "The request is missing a required parameter `Timestamp` (header X-TC-Timestamp).")
	}
	ts, err := strconv.ParseInt(e.timestampRaw, 10, 64)
	if err != nil {
		return e, errorf(CodeInvalidParameter, "The parameter `Timestamp` must be a Unix time in seconds.")
	}
	e.timestamp = ts
	return e, nil
}

// filter is one element of DescribeInstances' Filters.
type filter struct {
	name   string
	values []string
}

// params are the action parameters of both Describe actions.
type params struct {
	instanceIDs []string
	hasIDs      bool
	filters     []filter
	hasFilters  bool
	offset      int64
	hasOffset   bool
	limit       int64
	hasLimit    bool
}

// isCommonQueryParam reports the common parameters that may appear in a GET
// query (signature v1 style clients put them there); TC3 carries them in
// headers, so they are ignored.
func isCommonQueryParam(name string) bool {
	switch name {
	case "Action", "Version", "Region", "Timestamp", "Nonce", "RequestClient", "Language", "Token":
		return true
	}
	return false
}

// parseParams decodes the action parameters: the JSON body of a POST, or the
// query string of a GET with arrays flattened as Name.N (Filters.N.Values.M).
func parseParams(r *http.Request, body []byte, action string) (params, *apiError) {
	if r.Method == http.MethodGet {
		return parseQuery(r.URL.RawQuery, action)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return params{}, errorf(CodeInvalidParameter, "POST requests signed with TC3-HMAC-SHA256 must have Content-Type application/json.")
	}
	return parseJSON(body, action)
}

func allowsFilters(action string) bool { return action == ActionDescribeInstances }

func unknownParam(name string) *apiError {
	return errorf(CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", clip(name)))
}

func typeError(name, want string) *apiError {
	return errorf(CodeInvalidParameter, fmt.Sprintf("The parameter `%s` must be %s.", clip(name), want))
}

// clip shortens a client-supplied string before it is echoed in a message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func parseJSON(body []byte, action string) (params, *apiError) {
	var p params
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return p, nil // no parameters, like a GET without a query
	}
	if trimmed[0] != '{' {
		return p, errorf(CodeInvalidParameter, "The request body must be a JSON object.")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return p, errorf(CodeInvalidParameter, "The request body is not valid JSON.")
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic choice of the first error
	for _, name := range names {
		raw := fields[name]
		if isNull(raw) {
			continue
		}
		var err *apiError
		switch {
		case name == "Offset":
			p.offset, err = jsonInt(name, raw)
			p.hasOffset = true
		case name == "Limit":
			p.limit, err = jsonInt(name, raw)
			p.hasLimit = true
		case name == "InstanceIds":
			p.instanceIDs, err = jsonStrings(name, raw)
			p.hasIDs = len(p.instanceIDs) > 0
		case name == "Filters" && allowsFilters(action):
			p.filters, err = jsonFilters(raw)
			p.hasFilters = len(p.filters) > 0
		default:
			err = unknownParam(name)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func jsonInt(name string, raw json.RawMessage) (int64, *apiError) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] == '"' {
		return 0, typeError(name, "an integer")
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, typeError(name, "an integer")
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return 0, typeError(name, "an integer")
	}
	return v, nil
}

func jsonStrings(name string, raw json.RawMessage) ([]string, *apiError) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, typeError(name, "an array of strings")
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err != nil {
			return nil, typeError(fmt.Sprintf("%s.%d", name, i), "a string")
		}
		out = append(out, s)
	}
	return out, nil
}

func jsonFilters(raw json.RawMessage) ([]filter, *apiError) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, typeError("Filters", "an array of objects")
	}
	out := make([]filter, 0, len(items))
	for i, it := range items {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(it, &fields); err != nil || fields == nil {
			return nil, typeError(fmt.Sprintf("Filters.%d", i), "an object")
		}
		var f filter
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := fields[k]
			prefix := fmt.Sprintf("Filters.%d.%s", i, k)
			switch k {
			case "Name":
				if isNull(v) {
					continue
				}
				if err := json.Unmarshal(v, &f.name); err != nil {
					return nil, typeError(prefix, "a string")
				}
			case "Values":
				if isNull(v) {
					continue
				}
				vals, err := jsonStrings(prefix, v)
				if err != nil {
					return nil, err
				}
				f.values = vals
			default:
				return nil, unknownParam(prefix)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// maxIndex bounds the N of Name.N in a query; a larger index cannot belong to
// a valid request (at most 100 IDs, 10 filters, 5 values).
const maxIndex = 9999

// parseIndex parses the decimal N of Name.N: digits only, no sign, no
// leading zero.
func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxIndex
}

func parseQuery(raw, action string) (params, *apiError) {
	var p params
	q, err := url.ParseQuery(raw)
	if err != nil {
		return p, errorf(CodeInvalidParameter, "The query string is not validly encoded.")
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	ids := map[int]string{}
	type queryFilter struct {
		name    string
		hasName bool
		values  map[int]string
	}
	filters := map[int]*queryFilter{}
	for _, name := range names {
		vals := q[name]
		if len(vals) != 1 {
			return p, errorf(CodeInvalidParameter, fmt.Sprintf("The parameter `%s` is given more than once.", clip(name)))
		}
		v := vals[0]
		switch {
		case name == "Offset" || name == "Limit":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return p, typeError(name, "an integer")
			}
			if name == "Offset" {
				p.offset, p.hasOffset = n, true
			} else {
				p.limit, p.hasLimit = n, true
			}
		case strings.HasPrefix(name, "InstanceIds."):
			i, ok := parseIndex(strings.TrimPrefix(name, "InstanceIds."))
			if !ok {
				return p, unknownParam(name)
			}
			ids[i] = v
		case strings.HasPrefix(name, "Filters.") && allowsFilters(action):
			rest := strings.TrimPrefix(name, "Filters.")
			idx, field, _ := strings.Cut(rest, ".")
			i, ok := parseIndex(idx)
			if !ok {
				return p, unknownParam(name)
			}
			f := filters[i]
			if f == nil {
				f = &queryFilter{values: map[int]string{}}
				filters[i] = f
			}
			switch {
			case field == "Name":
				f.name, f.hasName = v, true
			case strings.HasPrefix(field, "Values."):
				j, ok := parseIndex(strings.TrimPrefix(field, "Values."))
				if !ok {
					return p, unknownParam(name)
				}
				f.values[j] = v
			default:
				return p, unknownParam(name)
			}
		case isCommonQueryParam(name):
			// carried in headers under TC3; ignored here
		default:
			return p, unknownParam(name)
		}
	}
	for _, i := range sortedKeys(ids) {
		p.instanceIDs = append(p.instanceIDs, ids[i])
	}
	p.hasIDs = len(p.instanceIDs) > 0
	for _, i := range sortedKeys(filters) {
		qf := filters[i]
		f := filter{name: qf.name}
		for _, j := range sortedKeys(qf.values) {
			f.values = append(f.values, qf.values[j])
		}
		p.filters = append(p.filters, f)
	}
	p.hasFilters = len(p.filters) > 0
	return p, nil
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
