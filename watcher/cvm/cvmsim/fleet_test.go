package cvmsim_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

func TestSameSeedSameFleet(t *testing.T) {
	opts := cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai", "ap-beijing"}, InstancesPerRegion: 200, Seed: 42}
	a, b := MustServer(t, opts), MustServer(t, opts)
	fa, fb := a.Instances(""), b.Instances("")
	if len(fa) != 600 {
		t.Fatalf("fleet size %d, want 600", len(fa))
	}
	for i := range fa {
		x, y := fa[i], fb[i]
		if x.InstanceId != y.InstanceId || x.InstanceState != y.InstanceState || x.Region != y.Region ||
			x.Zone != y.Zone || x.InstanceName != y.InstanceName || x.InstanceType != y.InstanceType {
			t.Fatalf("instance %d differs: %+v vs %+v", i, x, y)
		}
	}
	if a.NewInstanceID() != b.NewInstanceID() {
		t.Fatal("NewInstanceID differs for the same seed")
	}
	opts.Seed = 43
	if c := MustServer(t, opts).Instances(""); c[0].InstanceId == fa[0].InstanceId {
		t.Fatal("a different seed gave the same first ID")
	}
	idRe := regexp.MustCompile(`^ins-[a-z0-9]{8}$`)
	seen := map[string]bool{}
	states := map[string]int{}
	for _, in := range fa {
		if !idRe.MatchString(in.InstanceId) || seen[in.InstanceId] {
			t.Fatalf("bad or duplicate ID %q", in.InstanceId)
		}
		seen[in.InstanceId] = true
		states[in.InstanceState]++
	}
	if states["RUNNING"] < 400 || states["STOPPED"] < 30 || len(states) != 2 {
		t.Fatalf("initial states %v, want mostly RUNNING, some STOPPED", states)
	}
}

func TestHistoryIsGroundTruth(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 5, Seed: 13})
	h := srv.History()
	if len(h) != 5 {
		t.Fatalf("initial history has %d changes, want 5", len(h))
	}
	for _, c := range h {
		if c.From != cvmsim.Absent || c.Region != region || !c.Time.Equal(h[0].Time) {
			t.Fatalf("initial change %+v", c)
		}
	}
	id := srv.NewInstanceID()
	steps := []func() error{
		func() error { return srv.Create("", id, "PENDING") },
		func() error { return srv.SetState(id, "RUNNING") },
		func() error { return srv.SetState(id, "RUNNING") }, // no change, not recorded
		func() error { return srv.SetState(id, "STOPPED") },
		func() error { return srv.Release(id) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	h = srv.History()[5:]
	want := [][2]string{{cvmsim.Absent, "PENDING"}, {"PENDING", "RUNNING"}, {"RUNNING", "STOPPED"}, {"STOPPED", cvmsim.Absent}}
	if len(h) != len(want) {
		t.Fatalf("history %+v, want %v", h, want)
	}
	for i, w := range want {
		if h[i].InstanceID != id || h[i].From != w[0] || h[i].To != w[1] || h[i].Time.Before(srv.History()[0].Time) {
			t.Fatalf("change %d = %+v, want %v", i, h[i], w)
		}
	}
	// replaying History gives the fleet
	live := map[string]string{}
	for _, c := range srv.History() {
		if c.To == cvmsim.Absent {
			delete(live, c.InstanceID)
		} else {
			live[c.InstanceID] = c.To
		}
	}
	for _, in := range srv.Instances("") {
		if live[in.InstanceId] != in.InstanceState {
			t.Fatalf("replay: %s is %q, want %q", in.InstanceId, live[in.InstanceId], in.InstanceState)
		}
	}
	if len(live) != len(srv.Instances("")) {
		t.Fatalf("replay has %d instances, fleet %d", len(live), len(srv.Instances("")))
	}
}

func TestFleetMethodErrors(t *testing.T) {
	srv := MustServer(t, cvmsim.Options{InstancesPerRegion: 1})
	id := srv.Instances("")[0].InstanceId
	for _, tc := range []struct {
		name string
		err  error
		is   error
	}{
		{"create existing", srv.Create("", id, "RUNNING"), cvmsim.ErrInstanceExists},
		{"release unknown", srv.Release("ins-00000000"), cvmsim.ErrNoInstance},
		{"set state of unknown", srv.SetState("ins-00000000", "RUNNING"), cvmsim.ErrNoInstance},
		{"create in unknown region", srv.Create("ap-tokyo", "ins-11111111", "RUNNING"), nil},
		{"create with empty id", srv.Create("", "", "RUNNING"), nil},
		{"create with empty state", srv.Create("", "ins-11111111", ""), nil},
		{"set state ABSENT", srv.SetState(id, cvmsim.Absent), nil},
	} {
		if tc.err == nil || tc.is != nil && !errors.Is(tc.err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.is)
		}
	}
	if len(srv.History()) != 1 {
		t.Fatalf("failed calls changed History: %+v", srv.History())
	}
}

func TestNewServerRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]cvmsim.Options{
		"negative fleet":     {InstancesPerRegion: -1},
		"duplicate region":   {Regions: []string{"ap-guangzhou", "ap-guangzhou"}},
		"empty region":       {Regions: []string{""}},
		"negative churn":     {Churn: -1},
		"negative dwell":     {DwellScale: -1},
		"negative latency":   {Latency: -1},
		"negative burst":     {Burst: -1},
		"empty secret key":   {Credentials: map[string]string{"AKID": ""}},
		"listen on nonsense": {Listen: "not an address"},
	} {
		if srv, err := cvmsim.NewServer(opts); err == nil {
			srv.Close()
			t.Errorf("%s: NewServer succeeded", name)
		}
	}
}
