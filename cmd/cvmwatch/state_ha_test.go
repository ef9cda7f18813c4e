package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// state --server shows the owner of every target from the lease bucket,
// whichever replica took it (two lease managers here), a target with a
// lease but no scan summary yet, and the targets nobody holds.
func TestStateShowsEveryOwnerFromTheLeaseBucket(t *testing.T) {
	f := newNATSFixture(t, publisher.EmbeddedConfig{})
	tg := func(r string) watcher.Target { return watcher.Target{Account: "prod", Region: r} }
	leased := []watcher.Target{tg("ap-beijing"), tg("ap-chengdu"), tg("ap-guangzhou"), tg("ap-shanghai")}
	unowned := tg("ap-nanjing") // scanned once, then dropped from the configs: no lease
	at := time.Now().Add(-time.Minute).UTC()
	for _, s := range []watcher.Target{leased[0], leased[1], leased[2], unowned} {
		sum := watcher.ScanSummary{Target: s, Started: at, Complete: true, Instances: 2, ByState: map[watcher.State]int{"RUNNING": 2}}
		if err := f.pub.PublishScan(t.Context(), sum); err != nil {
			t.Fatal(err)
		}
	}
	var ms []*lease.Manager
	for _, id := range []string{"replica-a", "replica-b"} {
		m, err := lease.New(t.Context(), f.js, lease.Config{Replica: id, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		m.SetTargets(leased)
		ms = append(ms, m)
	}
	for _, m := range []*lease.Manager{ms[0], ms[1], ms[0], ms[1]} {
		m.Tick(t.Context())
	}
	want := map[string]lease.Lease{}
	owner := map[string]string{}
	for i, m := range ms {
		if len(m.Owned()) == 0 {
			t.Fatalf("replica %d holds nothing: this test proves nothing", i)
		}
		for _, l := range m.Owned() {
			want[l.Target.String()], owner[l.Target.String()] = l, []string{"replica-a", "replica-b"}[i]
		}
	}
	if len(want) != len(leased) {
		t.Fatalf("%d of %d targets leased", len(want), len(leased))
	}

	code, stdout, stderr := runCLI(t, "state", "--server", f.srv.ClientURL(), "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var got struct {
		Targets []targetHealth
		HA      *haState
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("state --json: %v\n%s", err, stdout)
	}
	if got.HA == nil {
		t.Fatalf("state --json has no ha entry:\n%s", stdout)
	}
	if len(got.Targets) != 5 {
		t.Fatalf("%d targets shown, want 5 (4 leased, 1 unowned):\n%s", len(got.Targets), stdout)
	}
	for _, th := range got.Targets {
		l, ok := want[th.Target]
		switch {
		case !ok && (th.Owner != "" || th.OwnerSince != nil):
			t.Errorf("%s shown owned by %s, but nobody holds it", th.Target, th.Owner)
		case ok && (th.Owner != owner[th.Target] || th.OwnerSince == nil || !th.OwnerSince.Equal(l.Since)):
			t.Errorf("%s shown owned by %q since %v; %s holds it since %v", th.Target, th.Owner, th.OwnerSince, owner[th.Target], l.Since)
		}
	}
	if !slices.Equal(got.HA.Unowned, []string{unowned.String()}) {
		t.Errorf("unowned %q, want [%s]", got.HA.Unowned, unowned)
	}
	if len(got.HA.Replicas) != 2 || got.HA.Replicas[0].Replica != "replica-a" || got.HA.Replicas[1].Replica != "replica-b" {
		t.Errorf("replicas %+v, want replica-a and replica-b", got.HA.Replicas)
	}
	if got.HA.LeaseTTL != "1m0s" || len(got.HA.Leases) != 4 {
		t.Errorf("ha = %+v, want lease_ttl 1m0s and 4 leases", got.HA)
	}

	code, stdout, stderr = runCLI(t, "state", "--server", f.srv.ClientURL())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for name, id := range owner {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+` + id + `\s+` + regexp.QuoteMeta(want[name].Since.UTC().Format(time.RFC3339)[:10]))
		if !row.MatchString(stdout) {
			t.Errorf("no OWNER row %q for %s:\n%s", id, name, stdout)
		}
	}
	for _, w := range []string{"TARGET  ", "OWNER", "replicas: replica-a (seen", "replica-b (seen", "lease_ttl 1m0s"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("state --server printed no %q:\n%s", w, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^prod/ap-nanjing\s+none\s+-`).MatchString(stdout) {
		t.Errorf("the unowned target is not shown with owner none:\n%s", stdout)
	}
}
