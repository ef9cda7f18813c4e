package oracle

import (
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// OperationReport is the outcome of CheckOperations; the counts say what
// it judged, so that a pass shows it looked at something.
type OperationReport struct {
	// Events counts the distinct operation events read: each one's form,
	// subject, id and Nats-Msg-Id checked, and that its request is not
	// also a state event's data.operation. Checked counts those compared
	// with the recorded operations (0 without them).
	Events     int         `json:"events"`
	Checked    int         `json:"checked"`
	Violations []Violation `json:"violations"`
}

// OK reports whether no operation event was wrong.
func (r OperationReport) OK() bool { return len(r.Violations) == 0 }

// String says what was judged.
func (r OperationReport) String() string {
	return fmt.Sprintf("operation events: %d, %d of them against the recorded operations, violations=%d",
		r.Events, r.Checked, len(r.Violations))
}

func (r *OperationReport) add(kind, instance, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Kind: kind, Instance: instance, Detail: fmt.Sprintf(format, args...)})
}

// CheckOperations judges the operation events (watcher.TypeOperation, the
// messages under <prefix>.operation.>) against the state events of the
// same stream and, when ops is not nil, the simulator's recorded
// operations. The rules:
//
//   - each is a well-formed operation event stored on its own subject with
//     its id as Nats-Msg-Id, and its id is watcher.OperationID of its
//     instance and request (malformed);
//   - no id is stored twice or with two contents (duplicate, conflict): so
//     one request is reported once per instance;
//   - its request is not also the data.operation of a state event of the
//     instance (reported-twice);
//   - with ops, the request is an operation recorded on that instance,
//     with that action, made within [previousObservedAt, observedAt]
//     widened by Options.Tolerance (untrue).
//
// It does not judge what polling cannot promise: an operation that no
// event names is never a violation.
func CheckOperations(operations, state []Message, ops []cvmsim.Operation, opts Options) OperationReport {
	r := OperationReport{Violations: []Violation{}}
	if opts.Prefix == "" {
		opts.Prefix = "cvm"
	}
	onState := map[string]bool{} // region/instance/request of every state event's data.operation
	for _, m := range state {
		if e, err := watcher.UnmarshalCloudEvent(m.Data); err == nil && e.Operation != nil && !e.IsOperation() {
			onState[e.Target.Region+"/"+e.InstanceID+"/"+e.Operation.RequestID] = true
		}
	}
	var byReq map[string]cvmsim.Operation
	if ops != nil {
		byReq = make(map[string]cvmsim.Operation, len(ops))
		for _, op := range ops {
			byReq[op.RequestID] = op
		}
	}
	stored := map[string]string{}
	for _, m := range operations {
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err == nil && (!e.IsOperation() || e.Operation == nil) {
			err = fmt.Errorf("a %s event, want an operation event with its operation", e.Type())
		}
		if err != nil {
			r.add("malformed", "", "stream seq %d on %s: %v", m.Seq, m.Subject, err)
			continue
		}
		key := e.Target.Region + "/" + e.InstanceID
		if want, err := e.Subject(opts.Prefix); err != nil || want != m.Subject || m.MsgID != e.ID {
			r.add("malformed", key, "operation event %s stored on %q with Nats-Msg-Id %q, want %q (%v)", e.ID, m.Subject, m.MsgID, want, err)
		}
		rid := e.Operation.RequestID
		if want := watcher.OperationID(e.Target, e.InstanceID, rid); e.ID != want {
			r.add("malformed", key, "operation event id %s is not the id %s of request %s", e.ID, want, rid)
		}
		if prev, ok := stored[e.ID]; ok {
			if prev == string(m.Data) {
				r.add("duplicate", key, "operation event %s (request %s) stored twice (stream seq %d)", e.ID, rid, m.Seq)
			} else {
				r.add("conflict", key, "operation event %s (request %s) stored with two different contents (stream seq %d)", e.ID, rid, m.Seq)
			}
			continue
		}
		stored[e.ID] = string(m.Data)
		r.Events++
		if onState[key+"/"+rid] {
			r.add("reported-twice", key, "request %s is an operation event (%s) and a state event's operation", rid, e.ID)
		}
		if e.PreviousObservedAt.IsZero() {
			r.add("malformed", key, "operation event %s has no previousObservedAt", e.ID)
			continue
		}
		if byReq == nil {
			continue
		}
		r.Checked++
		op, ok := byReq[rid]
		lo, hi := e.PreviousObservedAt.Add(-opts.Tolerance), e.ObservedAt.Add(opts.Tolerance)
		switch {
		case !ok || op.InstanceID != e.InstanceID || op.Region != e.Target.Region:
			r.add("untrue", key, "operation event %s names request %s, no operation recorded on this instance", e.ID, rid)
		case op.Action != e.Operation.Name:
			r.add("untrue", key, "operation event %s names %s, request %s was %s", e.ID, e.Operation.Name, rid, op.Action)
		case op.Time.Before(lo) || op.Time.After(hi):
			r.add("untrue", key, "operation event %s: %s %s was made at %s, outside [%s, %s]",
				e.ID, op.Action, rid, ts(op.Time), ts(e.PreviousObservedAt), ts(e.ObservedAt))
		}
	}
	return r
}
