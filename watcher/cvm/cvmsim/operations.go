package cvmsim

import (
	"errors"
	"fmt"
	"time"
)

// The values of LatestOperationState.
const (
	OperationOperating = "OPERATING"
	OperationSuccess   = "SUCCESS"
	OperationFailed    = "FAILED"
)

// The actions the simulator's operations name, as LatestOperation and
// CloudAudit's EventName show them. Update and the admin API accept any
// other action name too.
const (
	ActionRunInstances       = "RunInstances"
	ActionStopInstances      = "StopInstances"
	ActionStartInstances     = "StartInstances"
	ActionRebootInstances    = "RebootInstances"
	ActionTerminateInstances = "TerminateInstances"
)

// DefaultActor is the CloudAudit Username of an operation made through
// Operate, Update or the admin API without an actor: the root account, as
// CloudAudit names it.
const DefaultActor = "root"

// Operation is one API operation on an instance as the simulator recorded
// it: ground truth for attribution (GET /_sim/operations), and what
// LookUpEvents answers from. RequestID is the instance's
// LatestOperationRequestId while the operation is its latest one, and the
// RequestID of its CloudAudit event.
type Operation struct {
	RequestID  string    `json:"requestId"`
	EventID    string    `json:"eventId"` // CloudAudit's EventId
	Action     string    `json:"action"`  // e.g. StopInstances
	InstanceID string    `json:"instanceId"`
	Region     string    `json:"region"`
	Time       time.Time `json:"time"`     // when the request was made (server clock)
	Actor      string    `json:"actor"`    // CloudAudit's Username
	SourceIP   string    `json:"sourceIp"` // CloudAudit's SourceIPAddress
	// State is OPERATING, SUCCESS or FAILED: the operation's state now, as
	// LatestOperationState shows it while the operation is the latest.
	State string `json:"state"`
	Error string `json:"error,omitempty"` // LatestOperationErrorMsg of a FAILED one
	// Audited says LookUpEvents knows the operation (from Time +
	// Options.AuditDelay on); false for one made with Update.Unaudited.
	Audited bool `json:"audited"`
}

// churnActors are the users the churn engine's operations are made by:
// the root account, a sub-account (CloudAudit names it by its ID), named
// sub-accounts and a role.
var churnActors = []string{"root", "100000000011", "ops-bot", "ci-deploy", "roleUser"}

// lifecycle is the path of states an action takes an instance through,
// first entered at once, each later one after the dwell time of the one
// before; nil for an action that changes no state.
func lifecycle(action string) []string {
	switch action {
	case ActionStopInstances:
		return []string{StateStopping, StateStopped}
	case ActionStartInstances:
		return []string{StateStarting, StateRunning}
	case ActionRebootInstances:
		return []string{StateRebooting, StateRunning}
	case ActionTerminateInstances:
		return []string{StateShutdown, StateTerminating, Absent}
	}
	return nil
}

// failureMessage is the LatestOperationErrorMsg of a failed action.
func failureMessage(action string) string {
	switch action {
	case ActionStopInstances:
		return "The instance did not shut down in time; it is still running. Retry or force a stop."
	case ActionStartInstances:
		return "ResourceInsufficient.AvailabilityZoneSoldOut: the zone has no capacity to start the instance."
	case ActionRebootInstances:
		return "The instance did not respond to the reboot request; it is still running."
	case ActionTerminateInstances:
		return "InternalError: the instance could not be returned; it is unchanged."
	case ActionRunInstances:
		return "ResourceInsufficient.SpecifiedInstanceType: the instance could not be launched."
	}
	return "InternalError: the operation failed."
}

// newOpLocked records a new operation on in, makes it in's latest
// (OPERATING, a fresh request ID, no error) and the cause of in's changes
// until finishOpLocked. The request ID is random, like a real RequestId;
// the source IP, when empty, is drawn from the seeded operations stream.
func (s *Server) newOpLocked(in *instance, action, actor, sourceIP string, audited bool, now time.Time) *Operation {
	if actor == "" {
		actor = DefaultActor
	}
	if sourceIP == "" {
		sourceIP = fmt.Sprintf("203.0.113.%d", 1+s.rngOps.IntN(254))
	}
	op := &Operation{
		RequestID:  newRequestID(),
		EventID:    newRequestID(),
		Action:     action,
		InstanceID: in.id,
		Region:     in.region,
		Time:       now.UTC(),
		Actor:      actor,
		SourceIP:   sourceIP,
		State:      OperationOperating,
		Audited:    audited,
	}
	s.fleet.ops = append(s.fleet.ops, op)
	s.fleet.opsByReq[op.RequestID] = op
	in.latestOp, in.latestOpState, in.latestOpReq, in.latestOpErr = action, OperationOperating, op.RequestID, ""
	in.op = op
	return op
}

// finishOpLocked ends op with state (SUCCESS or FAILED, with msg) in its
// record and, if it is still in's latest operation, in LatestOperation*.
// in's later changes are no longer attributed to it.
func finishOpLocked(in *instance, op *Operation, state, msg string) {
	if op == nil {
		return
	}
	op.State, op.Error = state, msg
	if in.latestOpReq == op.RequestID {
		in.latestOpState, in.latestOpErr = state, msg
	}
	if in.op == op {
		in.op = nil
	}
}

// startOpLocked starts action on in now, made by actor: OPERATING with a
// fresh request ID, the first state of the action's lifecycle at once and
// the rest planned after their dwell times, then SUCCESS. An action with
// no lifecycle stays OPERATING for a dwell time, then succeeds. With fail,
// no state changes: the operation ends FAILED with a message after the
// dwell time of the state it would have entered. TerminateInstances marks
// the instance IsolatedSource MANMADE as it enters SHUTDOWN.
func (s *Server) startOpLocked(in *instance, now time.Time, action, actor string, fail bool) *Operation {
	s.fleet.cancel(in)
	op := s.newOpLocked(in, action, actor, "", true, now)
	path := lifecycle(action)
	if fail || len(path) == 0 {
		wait := s.dwellLocked("")
		if len(path) > 0 {
			wait = s.dwellLocked(path[0])
		}
		st := step{keep: true, at: now.Add(wait)}
		if fail {
			st.fail = failureMessage(action)
		}
		in.plan = append(in.plan[:0], st)
		s.fleet.pending[in.id] = in
		return op
	}
	if action == ActionTerminateInstances {
		in.isolated = "MANMADE"
	}
	s.fleet.setState(in, path[0], now)
	s.planLocked(in, now, path)
	return op
}

// Operate makes action on instance id now, as a client of the real API
// made by actor ("" is DefaultActor) would, and returns its request ID:
// StopInstances, StartInstances, RebootInstances and TerminateInstances go
// through their transitional states (STOPPING, STARTING, REBOOTING;
// SHUTDOWN and TERMINATING, then the instance is released) after the
// dwell times of the churn engine (scaled by Options.DwellScale), with
// LatestOperationState OPERATING until the last one and SUCCESS then; any
// other action changes no state and succeeds after a second or two. Every
// change is attributed to the operation in History, and the operation is
// recorded in Operations and for LookUpEvents. The instance's state is not
// checked against the action, and Operate never fails the operation (see
// Update for that). A pending operation of the instance is cancelled.
func (s *Server) Operate(id, action, actor string) (requestID string, err error) {
	if action == "" {
		return "", errors.New("operate: empty action")
	}
	if action == ActionRunInstances {
		return "", errors.New("operate: RunInstances creates an instance: use Update on a new instance or the admin API")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.fleet.byID[id]
	if !ok {
		return "", fmt.Errorf("operate %s on %q: %w", action, id, ErrNoInstance)
	}
	return s.startOpLocked(in, now, action, actor, false).RequestID, nil
}

// Update describes a change to an existing instance, as PUT
// /_sim/instances/{id} makes it. Zero fields change nothing.
type Update struct {
	// State is the new state; "" keeps it. Without Operation or
	// OperationState the change leaves LatestOperation* as they are and is
	// attributed to no operation.
	State string
	// Name and Tags replace the instance's name and tags when not nil (an
	// empty Tags removes every tag), without a state change.
	Name *string
	Tags *[]Tag
	// RestrictState and IsolatedSource replace theirs when not empty (e.g.
	// EXPIRED and ARREAR with State SHUTDOWN for an isolation for arrears).
	RestrictState  string
	IsolatedSource string
	// Operation names a new operation (an action such as "StopInstances"):
	// a fresh request ID, LatestOperation = Operation, and the state change
	// attributed to it. Its state is OperationState if set, else FAILED if
	// OperationError is set, else OPERATING if State is transitional
	// (PENDING, STOPPING, STARTING, REBOOTING, TERMINATING, rescue and
	// live-migration entries and exits), else SUCCESS.
	Operation string
	// OperationState without Operation moves the instance's latest
	// operation on (OPERATING, SUCCESS or FAILED), keeping its request ID,
	// with the state change attributed to it: how a test completes an
	// operation it left OPERATING.
	OperationState string
	// OperationError is LatestOperationErrorMsg of a FAILED operation.
	OperationError string
	// Actor and SourceIP are what CloudAudit reports for a new Operation:
	// Username ("" is DefaultActor) and SourceIPAddress ("" is drawn).
	Actor    string
	SourceIP string
	// Unaudited keeps a new Operation out of LookUpEvents for good: an
	// operation whose actor is never found.
	Unaudited bool
}

// isTransitional reports the states an operation is still OPERATING in.
func isTransitional(state string) bool {
	switch state {
	case StatePending, StateStopping, StateStarting, StateRebooting, StateTerminating,
		"ENTER_RESCUE_MODE", "EXIT_RESCUE_MODE", "ENTER_SERVICE_LIVE_MIGRATE", "EXIT_SERVICE_LIVE_MIGRATE":
		return true
	}
	return false
}

func checkOperationState(st string) error {
	switch st {
	case "", OperationOperating, OperationSuccess, OperationFailed:
		return nil
	}
	return fmt.Errorf("operation state %q: want OPERATING, SUCCESS or FAILED", st)
}

// validate reports what is wrong with u.
func (u Update) validate() error {
	if u.State == Absent {
		return errAbsentState
	}
	if err := checkOperationState(u.OperationState); err != nil {
		return err
	}
	if u.Operation == "" && (u.Actor != "" || u.SourceIP != "" || u.Unaudited) {
		return errors.New("actor, sourceIp and unaudited describe a new operation: name it")
	}
	if u.OperationError != "" && u.OperationState != "" && u.OperationState != OperationFailed {
		return errors.New("an operation error needs operation state FAILED")
	}
	return nil
}

// opState is the LatestOperationState a new operation of u gets.
func (u Update) opState() string {
	switch {
	case u.OperationState != "":
		return u.OperationState
	case u.OperationError != "":
		return OperationFailed
	case isTransitional(u.State):
		return OperationOperating
	}
	return OperationSuccess
}

// Update changes the existing instance id as u says and returns it. A
// change of state, a new operation or an operation state cancels the
// instance's pending churn transitions; a change of name, tags, restrict
// state or isolated source alone does not.
func (s *Server) Update(id string, u Update) (Instance, error) {
	if err := u.validate(); err != nil {
		return Instance{}, fmt.Errorf("update %q: %w", id, err)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.fleet.byID[id]
	if !ok {
		return Instance{}, fmt.Errorf("update %q: %w", id, ErrNoInstance)
	}
	s.updateLocked(in, u, now)
	return in.public(), nil
}

// updateLocked applies a validated u to in.
func (s *Server) updateLocked(in *instance, u Update, now time.Time) {
	if u.Name != nil {
		in.name = *u.Name
	}
	if u.Tags != nil {
		in.tags = append([]Tag{}, (*u.Tags)...)
	}
	if u.RestrictState != "" {
		in.restrict = u.RestrictState
	}
	if u.IsolatedSource != "" {
		in.isolated = u.IsolatedSource
	}
	if u.State == "" && u.Operation == "" && u.OperationState == "" {
		return
	}
	s.fleet.cancel(in)
	var op *Operation
	state := u.OperationState
	switch {
	case u.Operation != "":
		op = s.newOpLocked(in, u.Operation, u.Actor, u.SourceIP, !u.Unaudited, now)
		state = u.opState()
	case u.OperationState != "":
		op = s.fleet.opsByReq[in.latestOpReq] // nil for one the simulator did not record
		in.op = op
	}
	if u.State != "" {
		s.fleet.setState(in, u.State, now)
	}
	if op == nil { // an operation from before History: LatestOperation* only
		in.latestOpState, in.latestOpErr = state, ""
		if state == OperationFailed {
			in.latestOpErr = u.errorMessage(in.latestOp)
		}
		return
	}
	u.OperationState = state
	s.settleOpLocked(in, op, u)
}

// errorMessage is the LatestOperationErrorMsg of a failed action of u.
func (u Update) errorMessage(action string) string {
	if u.OperationError != "" {
		return u.OperationError
	}
	return failureMessage(action)
}

// settleOpLocked puts op, just made or moved on by u, in the state u gives
// it; in's later changes are no longer attributed to it.
func (s *Server) settleOpLocked(in *instance, op *Operation, u Update) {
	switch st := u.opState(); st {
	case OperationOperating:
		op.State, op.Error = st, ""
		if in.latestOpReq == op.RequestID {
			in.latestOpState, in.latestOpErr = st, ""
		}
	case OperationFailed:
		finishOpLocked(in, op, st, u.errorMessage(op.Action))
	default:
		finishOpLocked(in, op, st, "")
	}
	in.op = nil
}

// CreateOperated creates an instance as CreateInstance does, made by the
// new operation u describes (u.Operation, e.g. RunInstances, with its
// OperationState, OperationError, Actor, SourceIP and Unaudited; the other
// fields are ignored): the creation is attributed to it in History, and it
// is recorded for Operations and LookUpEvents.
func (s *Server) CreateOperated(spec Instance, u Update) (Instance, error) {
	if u.Operation == "" {
		return Instance{}, errors.New("create: no operation: use CreateInstance")
	}
	u = Update{State: spec.InstanceState, Operation: u.Operation, OperationState: u.OperationState,
		OperationError: u.OperationError, Actor: u.Actor, SourceIP: u.SourceIP, Unaudited: u.Unaudited}
	if err := u.validate(); err != nil {
		return Instance{}, fmt.Errorf("create %q: %w", spec.InstanceId, err)
	}
	return s.create(spec, &u)
}

// Operations returns every operation recorded, in the order made, with its
// current state. The initial fleet's operations (RunInstances,
// StopInstances) predate the simulator and are not recorded: LookUpEvents
// does not know them either.
func (s *Server) Operations() []Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Operation, 0, len(s.fleet.ops))
	for _, op := range s.fleet.ops {
		out = append(out, *op)
	}
	return out
}
