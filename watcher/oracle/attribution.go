package oracle

import (
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// AttributionReport is the outcome of CheckAttribution; the counts say
// what it judged, so that a pass shows it looked at something.
type AttributionReport struct {
	// Operations counts the events whose data.operation was compared with
	// the true history; Actors the actors (in events and follow-ups)
	// compared with the recorded operations; FollowUps the follow-ups read.
	Operations int         `json:"operations"`
	Actors     int         `json:"actors"`
	FollowUps  int         `json:"followUps"`
	Violations []Violation `json:"violations"`
}

// OK reports whether no attribution was wrong.
func (r AttributionReport) OK() bool { return len(r.Violations) == 0 }

// String says what was judged.
func (r AttributionReport) String() string {
	return fmt.Sprintf("attribution: %d operations against the true history, %d actors against the recorded operations, "+
		"%d follow-ups, violations=%d", r.Operations, r.Actors, r.FollowUps, len(r.Violations))
}

func (r *AttributionReport) add(kind, instance, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Kind: kind, Instance: instance, Detail: fmt.Sprintf(format, args...)})
}

// CheckAttribution judges the attribution the stream carries against the
// simulator's truth: state holds the state messages (and the operation
// events, whose follow-ups complete them: their actors are judged here,
// the rest by CheckOperations), follow the
// follow-ups (<prefix>.attribution.>), truth the history (each change with
// the operation and request that caused it) and ops the operations
// recorded (with their actors). The rules:
//
//   - an event's data.operation must be an operation recorded on that
//     instance that caused a true change of it within the event's window
//     (misattributed otherwise);
//   - an actor, in an event or a follow-up, must be the one recorded for
//     that request: username, source IP and action (wrong-actor);
//   - a follow-up must complete an event of the stream of the same
//     instance and operation that went out without an actor, have the id
//     watcher.AttributedID of it, and be the only one for it
//     (follow-up).
//
// It does not judge what attribution cannot promise: an event without an
// operation or an actor is never a violation.
func CheckAttribution(state, follow []Message, truth []cvmsim.Change, ops []cvmsim.Operation, opts Options) AttributionReport {
	r := AttributionReport{Violations: []Violation{}}
	if opts.Prefix == "" {
		opts.Prefix = "cvm"
	}
	byReq := make(map[string]cvmsim.Operation, len(ops))
	for _, op := range ops {
		byReq[op.RequestID] = op
	}
	events := map[string]watcher.Event{}
	for _, m := range state {
		e, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil || e.Completes != "" {
			continue // the stream checks report it
		}
		events[e.ID] = e
		if e.Operation == nil {
			continue
		}
		key := e.Target.Region + "/" + e.InstanceID
		if e.IsOperation() {
			// An operation event claims no change (CheckOperations judges
			// it); its actor is judged here, as a follow-up may complete it.
			if op, ok := byReq[e.Operation.RequestID]; ok && e.Actor != nil {
				r.checkActor(key, e.ID, *e.Actor, op)
			}
			continue
		}
		r.Operations++
		op, ok := byReq[e.Operation.RequestID]
		switch {
		case !ok || op.InstanceID != e.InstanceID:
			r.add("misattributed", key, "event %s (#%d %s->%s) names request %s, no operation recorded on this instance",
				e.ID, e.Sequence, e.From, e.To, e.Operation.RequestID)
			continue
		case !caused(truth, e, opts):
			r.add("misattributed", key, "event %s (#%d %s->%s) names %s %s, which caused no change of it within [%s, %s]",
				e.ID, e.Sequence, e.From, e.To, op.Action, op.RequestID, ts(e.PreviousObservedAt), ts(e.ObservedAt))
		}
		if e.Actor != nil {
			r.checkActor(key, e.ID, *e.Actor, op)
		}
	}
	done := map[string]string{}
	for _, m := range follow {
		f, err := watcher.UnmarshalCloudEvent(m.Data)
		if err != nil {
			r.add("malformed", "", "stream seq %d on %s: %v", m.Seq, m.Subject, err)
			continue
		}
		key := f.Target.Region + "/" + f.InstanceID
		r.FollowUps++
		if want, err := f.Subject(opts.Prefix); err != nil || want != m.Subject || m.MsgID != f.ID {
			r.add("malformed", key, "follow-up %s stored on %q with Nats-Msg-Id %q, want %q (%v)", f.ID, m.Subject, m.MsgID, want, err)
		}
		if f.Completes == "" || f.ID != watcher.AttributedID(f.Completes) {
			r.add("follow-up", key, "follow-up %s: id is not the one of the event it completes (%q)", f.ID, f.Completes)
			continue
		}
		if prev, ok := done[f.Completes]; ok {
			if prev == string(m.Data) {
				r.add("duplicate", key, "follow-up %s stored twice (stream seq %d)", f.ID, m.Seq)
			} else {
				r.add("conflict", key, "follow-up %s stored with two different contents", f.ID)
			}
			continue
		}
		done[f.Completes] = string(m.Data)
		e, ok := events[f.Completes]
		switch {
		case !ok:
			r.add("follow-up", key, "follow-up %s completes %s, which is not in the stream", f.ID, f.Completes)
			continue
		case e.InstanceID != f.InstanceID || e.Target != f.Target || e.Operation == nil || f.Operation == nil ||
			*e.Operation != *f.Operation:
			r.add("follow-up", key, "follow-up %s does not repeat the instance and operation of %s", f.ID, f.Completes)
			continue
		case e.Actor != nil:
			r.add("follow-up", key, "follow-up %s completes %s, which had its actor already", f.ID, f.Completes)
		case f.Actor == nil:
			r.add("follow-up", key, "follow-up %s names no actor", f.ID)
			continue
		}
		if op, ok := byReq[f.Operation.RequestID]; ok {
			r.checkActor(key, f.ID, *f.Actor, op)
		}
	}
	return r
}

// checkActor compares an actor with the recorded operation.
func (r *AttributionReport) checkActor(key, id string, a watcher.Actor, op cvmsim.Operation) {
	r.Actors++
	if a.Username != op.Actor || a.SourceIP != op.SourceIP || a.EventName != op.Action {
		r.add("wrong-actor", key, "%s names %q from %q (%s), the request %s was made by %q from %q (%s)",
			id, a.Username, a.SourceIP, a.EventName, op.RequestID, op.Actor, op.SourceIP, op.Action)
	}
}

// caused reports whether the truth has a change of e's instance made by
// e's operation within e's window (widened by the tolerance).
func caused(truth []cvmsim.Change, e watcher.Event, opts Options) bool {
	lo, hi := e.PreviousObservedAt.Add(-opts.Tolerance), e.ObservedAt.Add(opts.Tolerance)
	for _, c := range truth {
		if c.InstanceID == e.InstanceID && c.Region == e.Target.Region && c.RequestID == e.Operation.RequestID &&
			!c.Time.Before(lo) && !c.Time.After(hi) {
			return true
		}
	}
	return false
}
