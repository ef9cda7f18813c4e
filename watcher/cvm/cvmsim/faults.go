package cvmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// FaultKind names a way the API misbehaves. The string is the JSON value used
// by the admin API.
type FaultKind string

// The fault kinds. Error faults are checked right after authentication and
// before the quota; the others apply after the quota and the configured
// latency. Faults that shape the data (null-fields, lying-total, duplicate,
// unknown-state, hostile-ids, null-details, hostile-values, other-order) and the fleet
// faults (shift-insert, shift-release) apply only to requests that would
// otherwise succeed. Every kind applies to LookUpEvents as to the CVM
// actions except those that shape a page of instances (unknown-state,
// hostile-ids, null-details) and the fleet faults; there null-fields nulls
// the Events set when it is empty, else the first event's Username,
// EventTime, EventName, SourceIPAddress and Resources and the response's
// NextToken, ListOver and TotalCount; duplicate repeats the first event.
// Missing permission is an error fault with Code
// AuthFailure.UnauthorizedOperation and the Action it denies.
const (
	// FaultError answers Response.Error with Code (HTTP 200); any code.
	FaultError FaultKind = "error"
	// FaultLatency adds Delay before answering.
	FaultLatency FaultKind = "latency"
	// FaultTimeout never answers: it holds the request until the client
	// gives up or the server closes.
	FaultTimeout FaultKind = "timeout"
	// FaultTruncated sends the first half of the real response body.
	FaultTruncated FaultKind = "truncated"
	// FaultNonJSON answers 200 with a text/plain body.
	FaultNonJSON FaultKind = "non-json"
	// FaultHTML502 answers 502 with an HTML body, like a gateway.
	FaultHTML502 FaultKind = "html-502"
	// FaultEmptyObject answers 200 with `{}`.
	FaultEmptyObject FaultKind = "empty-object"
	// FaultEmptyResponse answers 200 {"Response":{"RequestId":".."}}:
	// no TotalCount, no set.
	FaultEmptyResponse FaultKind = "empty-response"
	// FaultNullFields nulls InstanceId of the page's first item and
	// InstanceState of its second (or first) item; an empty page gets a
	// null set instead of [].
	FaultNullFields FaultKind = "null-fields"
	// FaultLyingTotal replaces TotalCount with the fault's TotalCount.
	FaultLyingTotal FaultKind = "lying-total"
	// FaultDuplicate appends a copy of the page's first item, with State
	// if set (a conflicting duplicate). Needs a non-empty page.
	FaultDuplicate FaultKind = "duplicate"
	// FaultShiftInsert really creates an instance (State, default RUNNING)
	// in the request's region just before answering; it is listed first, so
	// later offsets shift by one. Recorded in History.
	FaultShiftInsert FaultKind = "shift-insert"
	// FaultShiftRelease really releases the first-listed instance of the
	// request's matching set just before answering a page with Offset > 0,
	// so offset paging skips one item. Recorded in History.
	FaultShiftRelease FaultKind = "shift-release"
	// FaultUnknownState replaces every state in the page with State
	// (default HIBERNATING).
	FaultUnknownState FaultKind = "unknown-state"
	// FaultHostileIDs adds items with the IDs `ins-a.b>*`, `ins-with space`,
	// a 300-character ID and "", and adds 4 to TotalCount.
	FaultHostileIDs FaultKind = "hostile-ids"
	// FaultNullDetails nulls, in every item of a DescribeInstances page,
	// every descriptive field but InstanceId and InstanceState (Placement,
	// InstanceName, InstanceType, IPs, CreatedTime, ExpiredTime,
	// RestrictState, IsolatedSource, LatestOperation*...) and makes Tags
	// [null, {"Key":"env","Value":null}]. DescribeInstances only.
	FaultNullDetails FaultKind = "null-details"
	// FaultHostileValues gives DescribeInstances items a hostile
	// InstanceName and 60 tags (beyond the 50 an event carries) with
	// hostile keys and values: NATS subject metacharacters, control
	// characters, NUL, a terminal escape, a right-to-left override, quotes
	// and markup, a 10,000-byte value, a 300-byte key, an empty key and a
	// duplicate key. To LookUpEvents events it gives a hostile Username and
	// SourceIPAddress.
	FaultHostileValues FaultKind = "hostile-values"
	// FaultOtherOrder cuts the page from the matching set listed oldest
	// first instead of newest first (TotalCount unchanged): an API that
	// lists in another order than the other one, which only offset paging
	// across both APIs notices.
	FaultOtherOrder FaultKind = "other-order"
)

// Fault describes one injected misbehaviour. A fault matches a request when
// its Action, Region and Offset (those that are set) equal the request's; a
// request without Offset has Offset 0.
type Fault struct {
	Kind       FaultKind `json:"kind"`
	Action     string    `json:"action,omitempty"`     // "" = any action
	Region     string    `json:"region,omitempty"`     // "" = any region
	Offset     *int      `json:"offset,omitempty"`     // nil = any offset
	Rate       float64   `json:"rate,omitempty"`       // probability per matching request; 0 = always
	Count      int       `json:"count,omitempty"`      // fire at most Count times; 0 = unlimited
	Code       string    `json:"code,omitempty"`       // FaultError
	Delay      Duration  `json:"delay,omitempty"`      // FaultLatency
	TotalCount int       `json:"totalCount,omitempty"` // FaultLyingTotal
	State      string    `json:"state,omitempty"`      // FaultUnknownState, FaultDuplicate, FaultShiftInsert
}

// Validate reports what is wrong with f, if anything. AddFault does not call
// it: a fault of an unknown kind simply never fires.
func (f Fault) Validate() error {
	switch f.Kind {
	case FaultError:
		if f.Code == "" {
			return errors.New("error fault needs a code")
		}
	case FaultLatency:
		if f.Delay <= 0 {
			return errors.New("latency fault needs a positive delay")
		}
	case FaultTimeout, FaultTruncated, FaultNonJSON, FaultHTML502, FaultEmptyObject,
		FaultEmptyResponse, FaultNullFields, FaultLyingTotal, FaultDuplicate,
		FaultShiftInsert, FaultShiftRelease, FaultUnknownState, FaultHostileIDs,
		FaultNullDetails, FaultHostileValues, FaultOtherOrder:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	switch {
	case f.Rate < 0 || f.Rate > 1 || f.Rate != f.Rate:
		return errors.New("rate must be within [0, 1]")
	case f.Count < 0:
		return errors.New("count must not be negative")
	case f.Delay < 0:
		return errors.New("delay must not be negative")
	case f.Offset != nil && *f.Offset < 0:
		return errors.New("offset must not be negative")
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a string such as
// "1.5s". A JSON number is read as seconds.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("250ms") or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"1.5s\" or seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// FaultStatus is an active fault with its ID and how often it fired.
type FaultStatus struct {
	ID int `json:"id"`
	Fault
	Fired int `json:"fired"`
}

type faultEntry struct {
	id    int
	f     Fault
	fired int
}

// faults is the set of active faults, in ID order. Guarded by Server.mu.
type faults struct {
	nextID int
	list   []*faultEntry
}

// AddFault activates f and returns its ID. It stays active until removed or
// until it has fired Count times.
func (s *Server) AddFault(f Fault) (id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.nextID++
	s.faults.list = append(s.faults.list, &faultEntry{id: s.faults.nextID, f: f})
	return s.faults.nextID
}

// RemoveFault deactivates fault id; unknown IDs are ignored.
func (s *Server) RemoveFault(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.list = slices.DeleteFunc(s.faults.list, func(e *faultEntry) bool { return e.id == id })
}

// ClearFaults deactivates every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.list = nil
}

// Faults returns the active faults in ID order.
func (s *Server) Faults() []FaultStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FaultStatus, 0, len(s.faults.list))
	for _, e := range s.faults.list {
		out = append(out, FaultStatus{ID: e.id, Fault: e.f, Fired: e.fired})
	}
	return out
}

// faultMatch is what a fault is matched against.
type faultMatch struct {
	action, region string
	offset         int64
}

// fireLocked offers every active fault of one of kinds that matches m (and
// passes its Rate) to apply, in ID order. apply reports whether the fault
// took effect; only then is it counted, and used up once it has fired Count
// times. With first, it stops after the first fault that took effect.
// It returns how many took effect.
func (s *Server) fireLocked(m faultMatch, first bool, apply func(Fault) bool, kinds ...FaultKind) int {
	n := 0
	for _, e := range slices.Clone(s.faults.list) {
		f := e.f
		if !slices.Contains(kinds, f.Kind) ||
			f.Action != "" && f.Action != m.action ||
			f.Region != "" && f.Region != m.region ||
			f.Offset != nil && int64(*f.Offset) != m.offset {
			continue
		}
		if f.Rate > 0 && f.Rate < 1 && s.rngFault.Float64() >= f.Rate {
			continue
		}
		if !apply(f) {
			continue
		}
		n++
		e.fired++
		s.stats.faultsInjected++
		if f.Count > 0 && e.fired >= f.Count {
			s.faults.list = slices.DeleteFunc(s.faults.list, func(x *faultEntry) bool { return x == e })
		}
		if first {
			break
		}
	}
	return n
}
