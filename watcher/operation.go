package watcher

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Operation events: an operation that left no visible state change (a
// reboot, a stop and start between two looks, a ResetInstance). Polling
// cannot see such a cycle, but DescribeInstances shows its request id
// (LatestOperationRequestId): a new one, in an answer whose state is the
// snapshot's, names the gap in the chain. It is published on its own, as
// TypeOperation, through the outbox like every event.

// IsOperation reports whether e is an operation event (TypeOperation): its
// From and To are both the instance's unchanged state, and it has no
// Sequence (it is not a step of the instance's chain of states).
func (e Event) IsOperation() bool {
	return e.Completes == "" && e.From != "" && e.From != Absent && e.From == e.To
}

// OperationID returns the stable id of the operation event of requestID on
// an instance: the same target, instance and request always give the same
// id, so a re-published operation event is a duplicate the broker drops,
// and one request is never reported twice for one instance.
func OperationID(t Target, instanceID, requestID string) string {
	h := sha256.New()
	for _, s := range []string{"operation", t.Account, t.Region, instanceID, requestID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// OperationEvent returns the operation event (TypeOperation) of fresh, an
// enrichment whose request id Reconcile found new: the unchanged state is
// fresh.State, data.operation fresh.Operation, data.instance
// fresh.Instance. The operation happened after the previous answer, which
// showed an older request id (prevFetchedAt, the stored enrichment's
// FetchedAt), and before the answer showing it arrived (arrived, no
// earlier than fresh.FetchedAt): the window is rounded out to the
// millisecond, as a transition's.
func OperationEvent(t Target, fresh Enrichment, prevFetchedAt, arrived time.Time) Event {
	op, in := fresh.Operation, fresh.Instance
	return Event{
		ID: OperationID(t, fresh.InstanceID, op.RequestID), Target: t, InstanceID: fresh.InstanceID,
		From: fresh.State, To: fresh.State,
		ObservedAt: ceilMillis(arrived), PreviousObservedAt: floorMillis(prevFetchedAt),
		Instance: &in, Operation: &op,
	}
}

// Reconcile decides, for a fresh enrichment of an instance that no
// transition of the same commit is about (a background refresh, or a scan
// page read through DescribeInstances: Scan.Described), what the store
// keeps and whether an operation event goes out. prev is the stored
// enrichment (hadPrev false: none); state is the instance's state in the
// snapshot (known false: no live record), enteredAt when a transition of
// the stream entered it (zero for a state known since the baseline).
//
// A request id is new when it is not empty, differs from prev's and prev
// exists (a first sighting reports nothing). A new one is:
//   - reported (op is fresh's operation, and the store takes fresh) when
//     the answer's state is the snapshot's state and the operation is not
//     OPERATING: it left no visible change;
//   - held otherwise: the store takes fresh's identity and state but keeps
//     prev's Operation and FetchedAt, so the transition the scans have not
//     seen yet carries it as data.operation, or a later answer reports it
//     with a window that still starts before it;
//   - absorbed (the store takes fresh, nothing is reported) when the
//     snapshot's state was entered by a transition after prev was fetched:
//     the operation may be the one that made that transition (published
//     without data.operation when its enrichment failed), and reporting
//     it as "no visible change" would be false. A cycle that really went
//     unseen after that transition is missed, as polling may miss it.
//
// No request id is ever stored without being reported or held: the stored
// FetchedAt is always a time the stored operation was the latest. A fresh
// answer without a request id keeps prev's operation (a null is not a new
// operation). The ARREAR/EXPIRE rule of Attribute does not apply: an
// operation event claims no cause, only that the operation happened.
func Reconcile(fresh, prev Enrichment, hadPrev bool, state State, known bool, enteredAt time.Time) (keep Enrichment, op *Operation) {
	rid := fresh.Operation.RequestID
	switch {
	case !hadPrev, rid == prev.Operation.RequestID:
		return fresh, nil
	case rid == "", fresh.Operation.State == OperationOperating, !known, fresh.State != state:
		fresh.Operation, fresh.FetchedAt = prev.Operation, prev.FetchedAt
		return fresh, nil
	case enteredAt.After(prev.FetchedAt):
		return fresh, nil
	}
	o := fresh.Operation
	return fresh, &o
}
