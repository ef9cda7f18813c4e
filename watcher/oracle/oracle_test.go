package oracle

import (
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

var (
	t0  = time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	tg  = watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	sec = func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
)

func ev(id string, seq uint64, from, to watcher.State, prev, obs time.Time) watcher.Event {
	return watcher.Event{
		ID: watcher.EventID(tg, id, seq, from, to), Target: tg, InstanceID: id,
		From: from, To: to, Sequence: seq, ObservedAt: obs, PreviousObservedAt: prev,
	}
}

func msgs(t *testing.T, evs ...watcher.Event) []Message {
	t.Helper()
	var out []Message
	for i, e := range evs {
		b, err := watcher.MarshalCloudEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		subj, err := e.Subject("cvm")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Message{Seq: uint64(i + 1), Subject: subj, MsgID: e.ID, Data: b})
	}
	return out
}

// truth: a created at 0 RUNNING, stopped at 10 (via STOPPING at 5), started
// at 40; b created at 0 RUNNING, released at 20.
var truth = []cvmsim.Change{
	{Time: sec(0), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "ABSENT", To: "RUNNING"},
	{Time: sec(0), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "ABSENT", To: "RUNNING"},
	{Time: sec(5), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "RUNNING", To: "STOPPING"},
	{Time: sec(10), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "STOPPING", To: "STOPPED"},
	{Time: sec(20), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "RUNNING", To: "ABSENT"},
	{Time: sec(40), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "STOPPED", To: "RUNNING"},
}

var silent = Options{BaselineStart: sec(1), BaselineEnd: sec(2), End: sec(100), MustSee: 10 * time.Second}

func good() []watcher.Event {
	return []watcher.Event{
		ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(3), sec(12)), // STOPPING skipped
		ev("ins-bbbbbbbb", 1, "RUNNING", "ABSENT", sec(18), sec(25)),
		ev("ins-aaaaaaaa", 2, "STOPPED", "RUNNING", sec(33), sec(42)),
	}
}

func TestCheckAcceptsAFaithfulStream(t *testing.T) {
	r := Check(msgs(t, good()...), truth, silent)
	if !r.OK() {
		t.Fatalf("violations on a faithful stream:\n%s", r)
	}
	if got, want := r.Events, 3; got != want {
		t.Errorf("events = %d, want %d", got, want)
	}
}

func TestCheckFindsEachViolation(t *testing.T) {
	g := good()
	dupMsgs := func(t *testing.T) []Message { m := msgs(t, g...); return append(m, m[0]) }
	tests := map[string]struct {
		msgs func(t *testing.T) []Message
		opts Options
		kind string
	}{
		"duplicate": {dupMsgs, silent, "duplicate"},
		"conflict": {func(t *testing.T) []Message {
			m := msgs(t, g...)
			other := g[0]
			other.ObservedAt = sec(13)
			c := msgs(t, other)[0]
			return append(m, c)
		}, silent, "conflict"},
		"sequence gap": {func(t *testing.T) []Message {
			return msgs(t, g[0], g[1], ev("ins-aaaaaaaa", 3, "STOPPED", "RUNNING", sec(33), sec(42)))
		}, silent, "chain"},
		"from is not the previous to": {func(t *testing.T) []Message {
			return msgs(t, g[0], g[1], ev("ins-aaaaaaaa", 2, "STOPPING", "RUNNING", sec(33), sec(42)))
		}, silent, "chain"},
		"false event": {func(t *testing.T) []Message {
			return msgs(t, append(g, ev("ins-cccccccc", 1, "ABSENT", "RUNNING", time.Time{}, sec(50)))...)
		}, silent, "unjustified"},
		"window misses the change": {func(t *testing.T) []Message {
			return msgs(t, ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(11), sec(12)), g[1], g[2])
		}, silent, "unjustified"},
		"observed before it happened": {func(t *testing.T) []Message {
			return msgs(t, ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(3), sec(9)), g[1], g[2])
		}, silent, "unjustified"},
		"lost final state":   {func(t *testing.T) []Message { return msgs(t, g[0], g[1]) }, silent, "lost"},
		"lost disappearance": {func(t *testing.T) []Message { return msgs(t, g[0], g[2]) }, silent, "lost"},
		"announced baseline not starting at ABSENT": {func(t *testing.T) []Message { return msgs(t, g...) },
			Options{Announced: true}, "chain"},
		"wrong subject": {func(t *testing.T) []Message {
			m := msgs(t, g...)
			m[1].Subject = "cvm.state.prod.ap-guangzhou.ins-bbbbbbbb.RUNNING.STOPPED"
			return m
		}, silent, "malformed"},
		"wrong msg id": {func(t *testing.T) []Message {
			m := msgs(t, g...)
			m[1].MsgID = "x"
			return m
		}, silent, "malformed"},
		"not an event": {func(t *testing.T) []Message {
			return append(msgs(t, g...), Message{Seq: 9, Subject: "cvm.state.x", Data: []byte("{")})
		}, silent, "malformed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := Check(tc.msgs(t), truth, tc.opts)
			found := false
			for _, v := range r.Violations {
				found = found || v.Kind == tc.kind
			}
			if !found {
				t.Fatalf("no %s violation found:\n%s", tc.kind, r)
			}
		})
	}
}

func TestCheckMustSeeALongState(t *testing.T) {
	// a's STOPPED (10..40) is 30 s long: a chain that skips it loses it,
	// although it ends in the right state.
	evs := []watcher.Event{ev("ins-bbbbbbbb", 1, "RUNNING", "ABSENT", sec(18), sec(25))}
	r := Check(msgs(t, evs...), truth, silent)
	if r.OK() || !strings.Contains(r.String(), "held from") && !strings.Contains(r.String(), "not at the baseline") {
		t.Fatalf("skipping a 30 s state was not reported:\n%s", r)
	}
	opts := silent
	opts.MustSee = 0
	opts.End = time.Time{}
	if r := Check(msgs(t, evs...), truth, opts); !r.OK() {
		t.Fatalf("without the loss checks, the stream is consistent:\n%s", r)
	}
}

func TestCheckWithoutTruthChecksChainsOnly(t *testing.T) {
	if r := Check(msgs(t, good()...), nil, Options{BaselineStart: sec(1), BaselineEnd: sec(1)}); !r.OK() {
		t.Fatalf("violations:\n%s", r)
	}
	if r := Check(append(msgs(t, good()...), msgs(t, good()[0])...), nil, silent); r.OK() {
		t.Fatal("a duplicate was not reported without truth")
	}
}

func TestCheckMustSeeOnlyWhatCleanScansCouldSee(t *testing.T) {
	// a's STOPPED (10..40) is skipped by the chain below. With scan
	// windows, it is a loss only if three clean scans ran while it was held.
	evs := []watcher.Event{ev("ins-bbbbbbbb", 1, "RUNNING", "ABSENT", sec(18), sec(25))}
	opts := silent
	opts.Scans = []ScanWindow{{Region: tg.Region, Start: sec(12), End: sec(13)}, {Region: tg.Region, Start: sec(20), End: sec(21)}}
	r := Check(msgs(t, evs...), truth, opts)
	for _, v := range r.Violations {
		if strings.Contains(v.Detail, "held from") {
			t.Fatalf("a state only two clean scans could see was required:\n%s", r)
		}
	}
	opts.Scans = append(opts.Scans, ScanWindow{Region: tg.Region, Start: sec(30), End: sec(31)})
	r = Check(msgs(t, evs...), truth, opts)
	found := false
	for _, v := range r.Violations {
		found = found || strings.Contains(v.Detail, "STOPPED held from")
	}
	if !found {
		t.Fatalf("a state three clean scans saw is not required:\n%s", r)
	}
}

func TestCheckFirstEventAfterAStateMissedSinceTheBaseline(t *testing.T) {
	// The baseline (1..2 s) saw a RUNNING; a rebooted between two scans
	// (5..8 s, missed) and stopped later: its first event leaves the RUNNING
	// entered at 8 s, which the baseline did not see, although it saw the
	// instance RUNNING.
	truth := []cvmsim.Change{
		{Time: sec(0), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "ABSENT", To: "RUNNING"},
		{Time: sec(5), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "RUNNING", To: "REBOOTING"},
		{Time: sec(8), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "REBOOTING", To: "RUNNING"},
		{Time: sec(20), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "RUNNING", To: "STOPPED"},
	}
	opts := Options{BaselineStart: sec(1), BaselineEnd: sec(2)}
	if r := Check(msgs(t, ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(18), sec(22))), truth, opts); !r.OK() {
		t.Fatalf("a first event after a missed reboot is unjustified:\n%s", r)
	}
	// Had the baseline run at 6..7 s, it saw REBOOTING: a first event from
	// RUNNING is then no step of the history.
	opts = Options{BaselineStart: sec(6), BaselineEnd: sec(7)}
	if r := Check(msgs(t, ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(18), sec(22))), truth, opts); r.OK() {
		t.Fatal("a first event from a state the baseline could not see was accepted")
	}
}
