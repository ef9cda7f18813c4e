package oracle

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// latencyTruth: a stops (STOPPING 5..10) and starts (STARTING 40..50); b
// reboots (REBOOTING 20..22); c is created at 30 (PENDING until 45).
var latencyTruth = []cvmsim.Change{
	{Time: sec(0), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "ABSENT", To: "RUNNING"},
	{Time: sec(0), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "ABSENT", To: "RUNNING"},
	{Time: sec(5), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "RUNNING", To: "STOPPING"},
	{Time: sec(10), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "STOPPING", To: "STOPPED"},
	{Time: sec(20), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "RUNNING", To: "REBOOTING"},
	{Time: sec(22), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "REBOOTING", To: "RUNNING"},
	{Time: sec(30), Region: tg.Region, InstanceID: "ins-cccccccc", From: "ABSENT", To: "PENDING"},
	{Time: sec(40), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "STOPPED", To: "STARTING"},
	{Time: sec(45), Region: tg.Region, InstanceID: "ins-cccccccc", From: "PENDING", To: "RUNNING"},
	{Time: sec(50), Region: tg.Region, InstanceID: "ins-aaaaaaaa", From: "STARTING", To: "RUNNING"},
}

// latencyEvents: a's STOPPING and b's reboot are missed; every other change
// is its own event. Detections (observed - true change): a 2 s, 1 s, 7 s;
// c 6 s, 4 s.
func latencyEvents() []watcher.Event {
	return []watcher.Event{
		ev("ins-aaaaaaaa", 1, "RUNNING", "STOPPED", sec(4), sec(12)),   // stable (From RUNNING), skips STOPPING
		ev("ins-aaaaaaaa", 2, "STOPPED", "STARTING", sec(32), sec(41)), // stable
		ev("ins-cccccccc", 1, watcher.Absent, "PENDING", time.Time{}, sec(36)),
		ev("ins-cccccccc", 2, "PENDING", "RUNNING", sec(36), sec(49)),  // transitional
		ev("ins-aaaaaaaa", 3, "STARTING", "RUNNING", sec(41), sec(57)), // transitional
	}
}

// storedMsgs are the messages of evs, each stored half a second after it
// was observed.
func storedMsgs(t *testing.T, evs []watcher.Event) []Message {
	m := msgs(t, evs...)
	for i := range m {
		m[i].Time = evs[i].ObservedAt.Add(500 * time.Millisecond)
	}
	return m
}

func secs(n float64) Seconds { return Seconds(n * float64(time.Second)) }

// latencyWant is the Latency of latencyEvents over latencyTruth, baseline
// at 1..2 s, scan cycle 10 s, until the last observation (57 s).
func latencyWant() Latency {
	return Latency{
		Since: sec(2), Until: sec(57), Cycle: secs(10),
		Transitional: Class{
			Detection: Distribution{N: 2, P50: secs(4), P90: secs(7), P99: secs(7), Max: secs(7)},
			Stored:    Distribution{N: 2, P50: secs(4.5), P90: secs(7.5), P99: secs(7.5), Max: secs(7.5)},
			// STOPPING->STOPPED (skipped), REBOOTING->RUNNING (missed),
			// PENDING->RUNNING and STARTING->RUNNING (their own events).
			Changes: 4, Captured: 2, Rate: 0.5,
		},
		Stable: Class{
			Detection: Distribution{N: 3, P50: secs(2), P90: secs(6), P99: secs(6), Max: secs(6)},
			Stored:    Distribution{N: 3, P50: secs(2.5), P90: secs(6.5), P99: secs(6.5), Max: secs(6.5)},
			// RUNNING->STOPPING and RUNNING->REBOOTING missed, STOPPED->STARTING
			// and ABSENT->PENDING captured.
			Changes: 4, Captured: 2, Rate: 0.5,
		},
		States: []StateCapture{
			{State: "PENDING", Entered: 1, Seen: 1, Rate: 1, Bound: 1},         // held 15 s
			{State: "REBOOTING", Entered: 1, Seen: 0, Rate: 0, Bound: 0.2},     // held 2 s
			{State: "RUNNING", Entered: 3, Seen: 2, Rate: 2.0 / 3, Bound: 0.9}, // a 7 s until 57, b and c >= 10 s
			{State: "STARTING", Entered: 1, Seen: 1, Rate: 1, Bound: 1},        // held 10 s
			{State: "STOPPED", Entered: 1, Seen: 1, Rate: 1, Bound: 1},         // held 30 s
			{State: "STOPPING", Entered: 1, Seen: 0, Rate: 0, Bound: 0.5},      // held 5 s
		},
	}
}

func TestLatency(t *testing.T) {
	base := Options{BaselineStart: sec(1), BaselineEnd: sec(2), Cycle: 10 * time.Second}
	tests := []struct {
		name string
		msgs func(t *testing.T) []Message
		opts func() Options
		want func() Latency
	}{
		{"every figure of a faithful stream", func(t *testing.T) []Message { return storedMsgs(t, latencyEvents()) },
			func() Options { return base }, latencyWant},
		{"changes after until are left out", func(t *testing.T) []Message { return storedMsgs(t, latencyEvents()) },
			func() Options { o := base; o.Until = sec(45); return o },
			func() Latency {
				w := latencyWant()
				w.Until = sec(45)
				// STARTING->RUNNING at 50 is out: its event and its change.
				w.Transitional.Detection = Distribution{N: 1, P50: secs(4), P90: secs(4), P99: secs(4), Max: secs(4)}
				w.Transitional.Stored = Distribution{N: 1, P50: secs(4.5), P90: secs(4.5), P99: secs(4.5), Max: secs(4.5)}
				w.Transitional.Changes, w.Transitional.Captured, w.Transitional.Rate = 3, 1, 1.0/3
				w.States[2] = StateCapture{State: "RUNNING", Entered: 2, Seen: 1, Rate: 0.5, Bound: 1}
				return w
			}},
		{"changes before the end of the baseline are left out", func(t *testing.T) []Message { return storedMsgs(t, latencyEvents()) },
			func() Options { o := base; o.BaselineEnd = sec(10); return o },
			func() Latency {
				w := latencyWant()
				w.Since = sec(10)
				// RUNNING->STOPPING at 5 and STOPPING->STOPPED at 10 are out,
				// and with it a's first event.
				w.Stable.Detection = Distribution{N: 2, P50: secs(1), P90: secs(6), P99: secs(6), Max: secs(6)}
				w.Stable.Stored = Distribution{N: 2, P50: secs(1.5), P90: secs(6.5), P99: secs(6.5), Max: secs(6.5)}
				w.Stable.Changes, w.Transitional.Changes = 3, 3
				w.Stable.Rate, w.Transitional.Rate = 2.0/3, 2.0/3
				w.States = w.States[:4] // STOPPED and STOPPING entered before
				return w
			}},
		{"the cycle is the median interval between clean scans", func(t *testing.T) []Message { return storedMsgs(t, latencyEvents()) },
			func() Options {
				o := base
				o.Cycle = 0
				for _, s := range []int{3, 13, 23, 43, 53} { // 33 was not clean
					o.Scans = append(o.Scans, ScanWindow{Region: tg.Region, Start: sec(s), End: sec(s + 1)})
				}
				o.Scans = append(o.Scans, ScanWindow{Region: "ap-beijing", Start: sec(0), End: sec(1)})
				return o
			}, latencyWant},
		{"no bound without a cycle", func(t *testing.T) []Message { return storedMsgs(t, latencyEvents()) },
			func() Options { o := base; o.Cycle = 0; return o },
			func() Latency {
				w := latencyWant()
				w.Cycle = 0
				for i := range w.States {
					w.States[i].Bound = 0
				}
				return w
			}},
		{"no store time without message times", func(t *testing.T) []Message { return msgs(t, latencyEvents()...) },
			func() Options { return base },
			func() Latency {
				w := latencyWant()
				w.Transitional.Stored, w.Stable.Stored = Distribution{}, Distribution{}
				return w
			}},
		{"a duplicate keeps the first store time", func(t *testing.T) []Message {
			m := storedMsgs(t, latencyEvents())
			dup := m[4]
			dup.Seq, dup.Time = 9, dup.Time.Add(time.Minute)
			return append(m, dup)
		}, func() Options { return base }, latencyWant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.msgs(t), latencyTruth, tc.opts())
			if r.Latency == nil {
				t.Fatal("no latency with truth")
			}
			for _, v := range r.Violations {
				if v.Kind != "duplicate" {
					t.Fatalf("violation on a faithful stream: %s", v)
				}
			}
			want := tc.want()
			// latencyTruth holds no disappearance: the changes out of a
			// transitional state all enter a present state.
			want.TransitionalToPresent = want.Transitional
			if got, want := rounded(*r.Latency), rounded(want); !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("latency =\n%s\nwant\n%s", gj, wj)
			}
		})
	}
}

// rounded rounds l's ratios to 1e-9, so that equal figures compare equal
// however they were summed.
func rounded(l Latency) Latency {
	r := func(f float64) float64 { return math.Round(f*1e9) / 1e9 }
	for _, c := range []*Class{&l.Transitional, &l.Stable, &l.TransitionalToPresent, &l.Disappearances} {
		c.Rate = r(c.Rate)
	}
	l.States = append([]StateCapture(nil), l.States...)
	for i := range l.States {
		l.States[i].Rate, l.States[i].Bound = r(l.States[i].Rate), r(l.States[i].Bound)
	}
	return l
}

// A disappearance is in its own class, and in the transitional class of
// the state it left, but not among the changes out of a transitional state
// into a present state: the class the hot set serves.
func TestLatencySplitsDisappearancesFromChangesIntoAPresentState(t *testing.T) {
	// b, after its missed reboot, terminates: TERMINATING 24..28, then gone.
	truth := append(latencyTruth[:len(latencyTruth):len(latencyTruth)],
		cvmsim.Change{Time: sec(24), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "RUNNING", To: "TERMINATING"},
		cvmsim.Change{Time: sec(28), Region: tg.Region, InstanceID: "ins-bbbbbbbb", From: "TERMINATING", To: "ABSENT"},
	)
	evs := append(latencyEvents(),
		ev("ins-bbbbbbbb", 1, "RUNNING", "TERMINATING", sec(23), sec(26)),      // stable, 2 s
		ev("ins-bbbbbbbb", 2, "TERMINATING", watcher.Absent, sec(26), sec(55)), // a disappearance, 27 s
	)
	r := Check(storedMsgs(t, evs), truth, Options{BaselineStart: sec(1), BaselineEnd: sec(2), Cycle: 10 * time.Second})
	if !r.OK() {
		t.Fatalf("violations on a faithful stream:\n%s", r)
	}
	l := rounded(*r.Latency)
	present := latencyWant().Transitional // PENDING->RUNNING 4 s, STARTING->RUNNING 7 s
	gone := Class{
		Detection: Distribution{N: 1, P50: secs(27), P90: secs(27), P99: secs(27), Max: secs(27)},
		Stored:    Distribution{N: 1, P50: secs(27.5), P90: secs(27.5), P99: secs(27.5), Max: secs(27.5)},
		Changes:   1, Captured: 1, Rate: 1,
	}
	transitional := Class{
		Detection: Distribution{N: 3, P50: secs(7), P90: secs(27), P99: secs(27), Max: secs(27)},
		Stored:    Distribution{N: 3, P50: secs(7.5), P90: secs(27.5), P99: secs(27.5), Max: secs(27.5)},
		Changes:   5, Captured: 3, Rate: 0.6,
	}
	for _, c := range []struct {
		name      string
		got, want Class
	}{
		{"into a present state", l.TransitionalToPresent, present},
		{"disappearances", l.Disappearances, gone},
		{"transitional", l.Transitional, transitional},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	lines := strings.Join(r.Latency.Lines(), "\n")
	for _, want := range []string{
		"detection latency (observedAt - true change), out of a transitional state into a present state: n=2 p50=4s p90=7s p99=7s max=7s",
		"detection latency (observedAt - true change), disappearances (into ABSENT): n=1 p50=27s p90=27s p99=27s max=27s",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("lines lack %q:\n%s", want, lines)
		}
	}
}

func TestLatencyWithoutTruthIsNil(t *testing.T) {
	if r := Check(msgs(t, latencyEvents()...), nil, Options{}); r.Latency != nil {
		t.Fatalf("latency without truth: %+v", r.Latency)
	}
}

func TestLatencyUnjustifiedEventIsNotADetection(t *testing.T) {
	// c's creation observed before it happened: unjustified, so neither a
	// detection nor a capture.
	evs := latencyEvents()
	evs[2] = ev("ins-cccccccc", 1, watcher.Absent, "PENDING", time.Time{}, sec(29))
	r := Check(storedMsgs(t, evs), latencyTruth, Options{BaselineStart: sec(1), BaselineEnd: sec(2), Cycle: 10 * time.Second})
	if r.OK() {
		t.Fatal("an event observed before its change was not reported")
	}
	if got, want := r.Latency.Stable.Detection.N, 2; got != want {
		t.Fatalf("stable detections = %d, want %d", got, want)
	}
	if got, want := r.Latency.Stable.Captured, 1; got != want {
		t.Fatalf("stable captured = %d, want %d", got, want)
	}
}

func TestDistribution(t *testing.T) {
	seq := func(n int) []time.Duration {
		var ds []time.Duration
		for i := n; i >= 1; i-- { // reversed: distribution sorts
			ds = append(ds, time.Duration(i)*time.Second)
		}
		return ds
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Distribution
	}{
		{"none", nil, Distribution{}},
		{"one", []time.Duration{5 * time.Second}, Distribution{N: 1, P50: secs(5), P90: secs(5), P99: secs(5), Max: secs(5)}},
		{"two", seq(2), Distribution{N: 2, P50: secs(1), P90: secs(2), P99: secs(2), Max: secs(2)}},
		{"ten", seq(10), Distribution{N: 10, P50: secs(5), P90: secs(9), P99: secs(10), Max: secs(10)}},
		{"a hundred", seq(100), Distribution{N: 100, P50: secs(50), P90: secs(90), P99: secs(99), Max: secs(100)}},
		{"a thousand", seq(1000), Distribution{N: 1000, P50: secs(500), P90: secs(900), P99: secs(990), Max: secs(1000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := distribution(tc.in); got != tc.want {
				t.Fatalf("distribution = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSecondsJSON(t *testing.T) {
	b, err := json.Marshal(Distribution{N: 1, P50: Seconds(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"n":1,"p50":1.500,"p90":0.000,"p99":0.000,"max":0.000}`; got != want {
		t.Fatalf("json = %s, want %s", got, want)
	}
	var d Distribution
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if got, want := time.Duration(d.P50), 1500*time.Millisecond; got != want {
		t.Fatalf("decoded p50 = %v, want %v", got, want)
	}
	if err := json.Unmarshal([]byte(`{"p50":"1s"}`), &d); err == nil {
		t.Fatal("a string decoded as seconds")
	}
}

func TestTransitional(t *testing.T) {
	for _, s := range []watcher.State{watcher.StatePending, watcher.StateStarting, watcher.StateStopping,
		watcher.StateRebooting, watcher.StateTerminating, watcher.StateEnterRescueMode, watcher.StateExitRescueMode,
		watcher.StateEnterServiceLiveMigrate, watcher.StateServiceLiveMigrate, watcher.StateExitServiceLiveMigrate} {
		if !s.Transitional() {
			t.Errorf("%s is not transitional", s)
		}
	}
	for _, s := range []watcher.State{watcher.Absent, watcher.StateRunning, watcher.StateStopped, watcher.StateShutdown,
		watcher.StateLaunchFailed, watcher.StateRescueMode, "HIBERNATING"} {
		if s.Transitional() {
			t.Errorf("%s is transitional", s)
		}
	}
}
