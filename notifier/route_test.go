package notifier

import (
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher"
)

func TestRouterFilterIsTheNarrowestCommonSubject(t *testing.T) {
	for _, tc := range []struct {
		name   string
		routes []Route
		want   string
	}{
		{"no constraint", []Route{{Name: "a", Sinks: []string{"s"}}}, "cvm.state.>"},
		{"one account", []Route{{Name: "a", Sinks: []string{"s"}, Match: Match{Accounts: []string{"prod"}}}}, "cvm.state.prod.>"},
		{"stops only", []Route{{Name: "a", Sinks: []string{"s"}, Match: Match{To: []string{"STOPPED"}}}}, "cvm.state.*.*.*.*.STOPPED"},
		{"two accounts", []Route{
			{Name: "a", Sinks: []string{"s"}, Match: Match{Accounts: []string{"prod"}}},
			{Name: "b", Sinks: []string{"s"}, Match: Match{Accounts: []string{"dev"}}},
		}, "cvm.state.>"},
		{"a glob", []Route{{Name: "a", Sinks: []string{"s"}, Match: Match{Accounts: []string{"prod-*"}}}}, "cvm.state.>"},
		{"instances may be names", []Route{{Name: "a", Sinks: []string{"s"}, Match: Match{Accounts: []string{"p"}, Instances: []string{"web-01"}}}}, "cvm.state.p.>"},
		{"a dropping route does not widen it", []Route{
			{Name: "q", Drop: true},
			{Name: "a", Sinks: []string{"s"}, Match: Match{Accounts: []string{"prod"}, Regions: []string{"ap-guangzhou"}}},
		}, "cvm.state.prod.ap-guangzhou.>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(tc.routes)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Filter("cvm"); got != tc.want {
				t.Fatalf("Filter = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTagRules(t *testing.T) {
	tagged := ev("ins-a", 2, "RUNNING", "STOPPED", time.Now())
	tagged.Instance = &watcher.Instance{Name: "web-01", Tags: []watcher.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: ""}}}
	bare := ev("ins-b", 2, "RUNNING", "STOPPED", time.Now())
	for _, tc := range []struct {
		rule             string
		tagged, bareWant bool
	}{
		{"env=prod", true, false},
		{"env=dev", false, false},
		{"team", true, false},
		{"!team", false, true},
		{"!owner", true, true},
	} {
		r, err := ParseTagRule(tc.rule)
		if err != nil {
			t.Fatalf("ParseTagRule(%q): %v", tc.rule, err)
		}
		if got := r.holds(tagged); got != tc.tagged {
			t.Errorf("%s on the tagged event = %v, want %v", tc.rule, got, tc.tagged)
		}
		if got := r.holds(bare); got != tc.bareWant {
			t.Errorf("%s on the bare event = %v, want %v", tc.rule, got, tc.bareWant)
		}
	}
	for _, bad := range []string{"", "=x", "!", "!a=b"} {
		if _, err := ParseTagRule(bad); err == nil {
			t.Errorf("ParseTagRule(%q) accepted", bad)
		}
	}
}

func TestMatchByNameGlobNeedsAName(t *testing.T) {
	m := Match{Instances: []string{"web-*"}}
	named := ev("ins-a", 2, "RUNNING", "STOPPED", time.Now())
	named.Instance = &watcher.Instance{Name: "web-01"}
	if !m.Matches(named) {
		t.Fatal("web-* does not match an instance named web-01")
	}
	if m.Matches(ev("ins-b", 2, "RUNNING", "STOPPED", time.Now())) {
		t.Fatal("web-* matches an instance without a name")
	}
}

func TestWindowWrapsMidnightInItsZone(t *testing.T) {
	w, err := ParseWindow("22:00-08:00", "mon-fri", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 11, 23, 23, 0, 0, 0, cst), true},      // Monday night
		{time.Date(2026, 11, 24, 7, 59, 0, 0, cst), true},      // Tuesday morning, from Monday
		{time.Date(2026, 11, 24, 8, 0, 0, 0, cst), false},      // end excluded
		{time.Date(2026, 11, 24, 12, 0, 0, 0, cst), false},     // midday
		{time.Date(2026, 11, 28, 23, 0, 0, 0, cst), false},     // Saturday night
		{time.Date(2026, 11, 23, 1, 0, 0, 0, cst), false},      // Monday morning: started Sunday
		{time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC), true}, // 23:00 in Shanghai
	} {
		if got := w.Contains(tc.t); got != tc.want {
			t.Errorf("Contains(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
	for _, bad := range [][3]string{{"22:00", "", ""}, {"25:00-08:00", "", ""}, {"08:00-08:00", "", ""}, {"08:00-09:00", "someday", ""}, {"08:00-09:00", "", "Nowhere/X"}} {
		if _, err := ParseWindow(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("ParseWindow%q accepted", bad)
		}
	}
}

func TestNewRouterRefusesBadRoutes(t *testing.T) {
	tmpl, err := ParseTemplate("t", "{{ .Nope }}")
	if err != nil {
		t.Fatal(err)
	}
	for name, rt := range map[string]Route{
		"no name":      {Sinks: []string{"s"}},
		"no sinks":     {Name: "a"},
		"bad glob":     {Name: "a", Sinks: []string{"s"}, Match: Match{Regions: []string{"[ap"}}},
		"bad type":     {Name: "a", Sinks: []string{"s"}, Match: Match{Kinds: []string{"stopped"}}},
		"bad template": {Name: "a", Sinks: []string{"s"}, Template: tmpl},
		"sink twice":   {Name: "a", Sinks: []string{"s", "t", "s"}},
	} {
		if _, err := NewRouter([]Route{rt}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
