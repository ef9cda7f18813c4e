package cvmsim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Absent is the pseudo-state of an instance that does not exist: the From of
// a creation and the To of a release in History.
const Absent = "ABSENT"

// Instance states the simulator itself produces. Tests may set any other
// string through SetState or the admin API.
const (
	StatePending      = "PENDING"
	StateLaunchFailed = "LAUNCH_FAILED"
	StateRunning      = "RUNNING"
	StateStopped      = "STOPPED"
	StateStarting     = "STARTING"
	StateStopping     = "STOPPING"
	StateRebooting    = "REBOOTING"
	StateShutdown     = "SHUTDOWN"
	StateTerminating  = "TERMINATING"
)

// Instance is one simulated instance as the simulator sees it. Only
// InstanceId, InstanceState and Region are encoded to JSON (the admin API's
// listing); the other fields describe what DescribeInstances returns.
type Instance struct {
	InstanceId    string `json:"InstanceId"`
	InstanceState string `json:"InstanceState"`
	Region        string `json:"Region"`

	Zone               string    `json:"-"` // Placement.Zone, e.g. ap-guangzhou-3
	InstanceName       string    `json:"-"`
	InstanceType       string    `json:"-"`
	Tags               []Tag     `json:"-"`
	PrivateIpAddresses []string  `json:"-"`
	PublicIpAddresses  []string  `json:"-"` // nil: none (the API answers null)
	InstanceChargeType string    `json:"-"` // POSTPAID_BY_HOUR or PREPAID
	CreatedTime        time.Time `json:"-"`
	ExpiredTime        time.Time `json:"-"` // zero for postpaid (the API answers null)
	RestrictState      string    `json:"-"` // NORMAL, EXPIRED, PROTECTIVELY_ISOLATED
	IsolatedSource     string    `json:"-"` // NOTISOLATED, ARREAR, EXPIRE, MANMADE

	LatestOperation          string `json:"-"`
	LatestOperationState     string `json:"-"` // SUCCESS, OPERATING or FAILED
	LatestOperationRequestId string `json:"-"`
	LatestOperationErrorMsg  string `json:"-"` // set when FAILED
}

// Tag is a key/value tag of an instance.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Change is one state change of the simulated fleet: ground truth for tests.
// From is Absent for a creation, To is Absent for a release.
//
// Operation and RequestID name the operation that caused the change, as
// DescribeInstances shows it in LatestOperation and LatestOperationRequestId
// while it lasts, and as Operations and LookUpEvents record it. They are
// empty for a change no operation caused: the initial fleet, SetState, an
// admin PUT without "operation", an isolation for arrears or expiry
// (IsolatedSource says why), fleet faults.
type Change struct {
	Time       time.Time `json:"time"`
	Region     string    `json:"region"`
	InstanceID string    `json:"instanceId"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Operation  string    `json:"operation,omitempty"`
	RequestID  string    `json:"requestId,omitempty"`
}

// instance is the simulator's record of one instance.
type instance struct {
	id, region, zone, name, itype, state string
	tags                                 []Tag
	created                              time.Time
	seq                                  uint64 // creation order; listing is newest (highest) first
	chargeType                           string
	expires                              time.Time // zero for postpaid
	privateIP, publicIP                  string
	imageID, sgID, vpcID, subnetID, uuid string
	cpu, memory                          int64
	projectID                            int64
	restrict, isolated                   string // RestrictState, IsolatedSource
	latestOp, latestOpState, latestOpReq string
	latestOpErr                          string
	plan                                 []step     // pending churn transitions, earliest first
	op                                   *Operation // the operation whose changes these are; nil: none
}

func (in *instance) public() Instance {
	out := Instance{
		InstanceId:               in.id,
		InstanceState:            in.state,
		Region:                   in.region,
		Zone:                     in.zone,
		InstanceName:             in.name,
		InstanceType:             in.itype,
		Tags:                     append([]Tag(nil), in.tags...),
		PrivateIpAddresses:       []string{in.privateIP},
		InstanceChargeType:       in.chargeType,
		CreatedTime:              in.created,
		ExpiredTime:              in.expires,
		RestrictState:            in.restrict,
		IsolatedSource:           in.isolated,
		LatestOperation:          in.latestOp,
		LatestOperationState:     in.latestOpState,
		LatestOperationRequestId: in.latestOpReq,
		LatestOperationErrorMsg:  in.latestOpErr,
	}
	if in.publicIP != "" {
		out.PublicIpAddresses = []string{in.publicIP}
	}
	return out
}

// fleet is the simulated fleet and its history. Guarded by Server.mu.
type fleet struct {
	byID       map[string]*instance
	regions    map[string][]*instance // per region, ascending seq
	order      []string               // configured regions
	seq        uint64
	issued     map[string]struct{} // every ID ever handed out; never reused
	history    []Change
	lastChange time.Time
	pending    map[string]*instance // instances with a churn plan
	ops        []*Operation         // every operation, in the order made
	opsByReq   map[string]*Operation
}

func newFleet(regions []string) fleet {
	f := fleet{
		byID:     map[string]*instance{},
		regions:  map[string][]*instance{},
		order:    append([]string(nil), regions...),
		issued:   map[string]struct{}{},
		pending:  map[string]*instance{},
		opsByReq: map[string]*Operation{},
	}
	for _, r := range regions {
		f.regions[r] = nil
	}
	return f
}

// record appends a change of in, caused by in.op if set; times never go
// backwards in History.
func (f *fleet) record(t time.Time, in *instance, from, to string) {
	t = t.UTC() // also drops the monotonic reading
	if t.Before(f.lastChange) {
		t = f.lastChange
	}
	f.lastChange = t
	c := Change{Time: t, Region: in.region, InstanceID: in.id, From: from, To: to}
	if in.op != nil {
		c.Operation, c.RequestID = in.op.Action, in.op.RequestID
	}
	f.history = append(f.history, c)
}

// add inserts a new instance as the newest of its region and records
// ABSENT -> state.
func (f *fleet) add(in *instance, t time.Time) {
	f.seq++
	in.seq = f.seq
	f.byID[in.id] = in
	f.issued[in.id] = struct{}{}
	f.regions[in.region] = append(f.regions[in.region], in)
	f.record(t, in, Absent, in.state)
}

// setState changes the state of in and records it; no-op if unchanged.
func (f *fleet) setState(in *instance, state string, t time.Time) {
	if in.state == state {
		return
	}
	f.record(t, in, in.state, state)
	in.state = state
}

// remove releases in: gone from every listing, state -> ABSENT recorded.
func (f *fleet) remove(in *instance, t time.Time) {
	list := f.regions[in.region]
	i := sort.Search(len(list), func(i int) bool { return list[i].seq >= in.seq })
	if i < len(list) && list[i] == in {
		f.regions[in.region] = slices.Delete(list, i, i+1)
	}
	delete(f.byID, in.id)
	delete(f.pending, in.id)
	in.plan = nil
	f.record(t, in, in.state, Absent)
}

// listing returns the instances of region in listing order: newest first.
func (f *fleet) listing(region string) []*instance {
	list := f.regions[region]
	out := make([]*instance, len(list))
	for i, in := range list {
		out[len(list)-1-i] = in
	}
	return out
}

// Errors of the fleet methods, for callers that branch on them.
var (
	// ErrNoInstance: the instance does not exist (never did, or released).
	ErrNoInstance = errors.New("no such instance")
	// ErrInstanceExists: Create of an ID that exists.
	ErrInstanceExists = errors.New("instance exists")
)

var (
	errEmptyID     = errors.New("instance id is empty")
	errEmptyState  = errors.New("instance state is empty")
	errAbsentState = errors.New("state ABSENT is not a state: use Release")
)

func checkState(state string) error {
	switch state {
	case "":
		return errEmptyState
	case Absent:
		return errAbsentState
	}
	return nil
}

// SetState sets the state of an existing instance and records the change in
// History (nothing is recorded if the state is unchanged). Any non-empty
// string other than Absent is accepted, so tests can plant unknown states. A
// pending churn transition of the instance is cancelled.
func (s *Server) SetState(id, state string) error {
	if err := checkState(state); err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.fleet.byID[id]
	if !ok {
		return fmt.Errorf("set state of %q: %w", id, ErrNoInstance)
	}
	s.fleet.cancel(in)
	s.fleet.setState(in, state, now)
	return nil
}

// cancel drops the pending churn transitions of in: its operation, if any,
// stays as it is (OPERATING), and later changes are not attributed to it.
func (f *fleet) cancel(in *instance) {
	in.plan = nil
	in.op = nil
	delete(f.pending, in.id)
}

// Create adds a new instance, listed first in its region from now on, and
// records ABSENT -> state. Region "" means the first configured region. Any
// non-empty id is accepted (hostile IDs included); an id that exists is an
// error. Name, zone, type and tags are generated from the seeded RNG.
func (s *Server) Create(region, id, state string) error {
	return s.CreateInstance(Instance{Region: region, InstanceId: id, InstanceState: state})
}

// CreateInstance is Create with control over the descriptive fields: a
// non-empty Zone, InstanceName, InstanceType, Tags, PrivateIpAddresses,
// PublicIpAddresses, InstanceChargeType, RestrictState, IsolatedSource and
// LatestOperation* (and a non-zero CreatedTime or ExpiredTime) is used as
// given, the rest is generated. A PREPAID instance without ExpiredTime gets
// one; a POSTPAID_BY_HOUR one never has one. The creation is attributed to
// no operation in History and Operations; use Update or the admin API's
// "operation" for that.
func (s *Server) CreateInstance(spec Instance) error {
	_, err := s.create(spec, nil)
	return err
}

// create is CreateInstance, made by the new operation u describes if u is
// not nil: then the creation is attributed to it.
func (s *Server) create(spec Instance, u *Update) (Instance, error) {
	if spec.InstanceId == "" {
		return Instance{}, errEmptyID
	}
	if err := checkState(spec.InstanceState); err != nil {
		return Instance{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	region := spec.Region
	if region == "" {
		region = s.fleet.order[0]
	}
	if _, ok := s.fleet.regions[region]; !ok {
		return Instance{}, fmt.Errorf("create %q: region %q is not served", spec.InstanceId, region)
	}
	if _, ok := s.fleet.byID[spec.InstanceId]; ok {
		return Instance{}, fmt.Errorf("create %q: %w", spec.InstanceId, ErrInstanceExists)
	}
	in := s.genInstanceLocked(region, spec.InstanceId, spec.InstanceState, now)
	if spec.Zone != "" {
		in.zone = spec.Zone
	}
	if spec.InstanceName != "" {
		in.name = spec.InstanceName
	}
	if spec.InstanceType != "" {
		in.itype = spec.InstanceType
	}
	if spec.Tags != nil {
		in.tags = append([]Tag(nil), spec.Tags...)
	}
	if !spec.CreatedTime.IsZero() {
		in.created = spec.CreatedTime
	}
	applySpec(in, spec, now)
	var op *Operation
	if u != nil {
		op = s.newOpLocked(in, u.Operation, u.Actor, u.SourceIP, !u.Unaudited, now)
	}
	s.fleet.add(in, now)
	if op != nil {
		s.settleOpLocked(in, op, *u)
	}
	return in.public(), nil
}

// applySpec sets the fields of spec that CreateInstance takes as given
// beyond zone, name, type, tags and creation time.
func applySpec(in *instance, spec Instance, now time.Time) {
	if len(spec.PrivateIpAddresses) > 0 {
		in.privateIP = spec.PrivateIpAddresses[0]
	}
	if spec.PublicIpAddresses != nil {
		in.publicIP = ""
		if len(spec.PublicIpAddresses) > 0 {
			in.publicIP = spec.PublicIpAddresses[0]
		}
	}
	if spec.InstanceChargeType != "" && spec.InstanceChargeType != in.chargeType {
		in.chargeType = spec.InstanceChargeType
		in.expires = time.Time{}
		if in.chargeType == "PREPAID" {
			in.expires = now.UTC().Truncate(time.Second).AddDate(0, 1, 0)
		}
	}
	if !spec.ExpiredTime.IsZero() && in.chargeType == "PREPAID" {
		in.expires = spec.ExpiredTime
	}
	if spec.RestrictState != "" {
		in.restrict = spec.RestrictState
	}
	if spec.IsolatedSource != "" {
		in.isolated = spec.IsolatedSource
	}
	if spec.LatestOperation != "" {
		in.latestOp, in.latestOpState = spec.LatestOperation, spec.LatestOperationState
		in.latestOpReq, in.latestOpErr = spec.LatestOperationRequestId, spec.LatestOperationErrorMsg
	}
}

// Release removes an instance from every listing and records state -> ABSENT.
func (s *Server) Release(id string) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.fleet.byID[id]
	if !ok {
		return fmt.Errorf("release %q: %w", id, ErrNoInstance)
	}
	s.fleet.cancel(in)
	s.fleet.remove(in, now)
	return nil
}

// Instances returns the instances of region ("" = every region, in the order
// of Options.Regions), each region in API listing order: newest first.
func (s *Server) Instances(region string) []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	regions := []string{region}
	if region == "" {
		regions = s.fleet.order
	}
	var out []Instance
	for _, r := range regions {
		for _, in := range s.fleet.listing(r) {
			out = append(out, in.public())
		}
	}
	return out
}

// History returns every state change ever made, in the order it was made,
// with non-decreasing times. The initial fleet is recorded as ABSENT -> state
// at the time the server was created, so History is complete ground truth.
func (s *Server) History() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.fleet.history...)
}

// NewInstanceID returns a well-formed ID (ins- and 8 of [a-z0-9]) that no
// instance of this server has had or will get from the simulator. IDs come
// from the seeded RNG, so a given Seed and call sequence gives the same IDs.
func (s *Server) NewInstanceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newIDLocked()
}
