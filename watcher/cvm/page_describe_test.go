package cvm

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// item is one listed item for both APIs' answers; nil pointers are JSON
// nulls, and null makes the whole item null.
type item struct {
	id, state *string
	null      bool
}

func sp(s string) *string { return &s }

// answers builds the same answer as DescribeInstancesStatus and as
// DescribeInstances would give it (nullSet: a null set).
func answers(total *int64, nullSet bool, items []item) (*cvmapi.DescribeInstancesStatusResponse, *cvmapi.DescribeInstancesResponse) {
	st, di := cvmapi.NewDescribeInstancesStatusResponse(), cvmapi.NewDescribeInstancesResponse()
	st.Response = &cvmapi.DescribeInstancesStatusResponseParams{TotalCount: total}
	di.Response = &cvmapi.DescribeInstancesResponseParams{TotalCount: total}
	if !nullSet {
		st.Response.InstanceStatusSet = []*cvmapi.InstanceStatus{}
		di.Response.InstanceSet = []*cvmapi.Instance{}
	}
	for _, it := range items {
		if it.null {
			st.Response.InstanceStatusSet = append(st.Response.InstanceStatusSet, nil)
			di.Response.InstanceSet = append(di.Response.InstanceSet, nil)
			continue
		}
		st.Response.InstanceStatusSet = append(st.Response.InstanceStatusSet, &cvmapi.InstanceStatus{InstanceId: it.id, InstanceState: it.state})
		di.Response.InstanceSet = append(di.Response.InstanceSet, &cvmapi.Instance{InstanceId: it.id, InstanceState: it.state,
			InstanceName: sp("name of " + deref(it.id)), Placement: &cvmapi.Placement{Zone: sp("ap-guangzhou-3")},
			LatestOperationRequestId: sp("req-" + deref(it.id))})
	}
	return st, di
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestDescribePageIsValidatedLikeAStatusPage: the same answer from either
// API gives the same page (observations, IDs, rejections), and an
// Enrichment for exactly each observation.
func TestDescribePageIsValidatedLikeAStatusPage(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name    string
		offset  int
		total   *int64
		nullSet bool
		items   []item
		wantErr bool
		// wantObs and wantIDs are the observations and the named IDs.
		wantObs, wantIDs, wantRejected int
	}{
		{name: "usable items", total: i64(2), items: []item{{id: sp("ins-aaaaaaaa"), state: sp("RUNNING")}, {id: sp("ins-bbbbbbbb"), state: sp("STOPPED")}},
			wantObs: 2, wantIDs: 2},
		{name: "null item, null id, null state", total: i64(3), items: []item{{null: true}, {state: sp("RUNNING")}, {id: sp("ins-cccccccc")}},
			wantIDs: 1, wantRejected: 3},
		{name: "hostile ids", total: i64(4), items: []item{{id: sp("ins-a.b>*"), state: sp("RUNNING")}, {id: sp("ins-with space"), state: sp("RUNNING")},
			{id: sp(""), state: sp("RUNNING")}, {id: sp("ins-aaaaaaaa"), state: sp("RUNNING")}},
			wantObs: 1, wantIDs: 1, wantRejected: 3},
		{name: "hostile or absent state keeps the id", total: i64(3), items: []item{{id: sp("ins-aaaaaaaa"), state: sp("RUN>NING")},
			{id: sp("ins-bbbbbbbb"), state: sp("")}, {id: sp("ins-cccccccc"), state: sp(string(watcher.Absent))}},
			wantIDs: 3, wantRejected: 3},
		{name: "unknown state passes", total: i64(1), items: []item{{id: sp("ins-aaaaaaaa"), state: sp("HIBERNATING")}}, wantObs: 1, wantIDs: 1},
		{name: "no TotalCount", items: []item{}, wantErr: true},
		{name: "negative TotalCount", total: i64(-1), wantErr: true},
		{name: "absurd TotalCount", total: i64(maxTotalCount + 1), wantErr: true},
		{name: "null set with items due", total: i64(5), nullSet: true, wantErr: true},
		{name: "null set past the end", offset: 100, total: i64(5), nullSet: true},
	}
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, di := answers(tt.total, tt.nullSet, tt.items)
			want, werr := parsePage(tt.offset, st)
			got, gerr := parseDescribePage(tt.offset, di, sent)
			if (werr != nil) != tt.wantErr || (gerr != nil) != tt.wantErr {
				t.Fatalf("errors: status %v, describe %v; want error %v", werr, gerr, tt.wantErr)
			}
			if tt.wantErr {
				if !errors.Is(gerr, ErrMalformed) {
					t.Fatalf("describe error %v is not ErrMalformed", gerr)
				}
				return
			}
			if got, want := len(got.items), tt.wantObs; got != want {
				t.Fatalf("observations = %d, want %d", got, want)
			}
			if got, want := len(got.ids), tt.wantIDs; got != want {
				t.Fatalf("ids = %d, want %d", got, want)
			}
			if got, want := got.rejected, tt.wantRejected; got != want {
				t.Fatalf("rejected = %d, want %d", got, want)
			}
			desc := got.described
			got.described = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("describe page\n%+v\nstatus page\n%+v", got, want)
			}
			if got, want := len(desc), len(got.items); got != want {
				t.Fatalf("%d enrichments for %d observations", got, want)
			}
			for i, e := range desc {
				o := got.items[i]
				if e.InstanceID != o.InstanceID || e.State != o.State || !e.FetchedAt.Equal(sent) {
					t.Fatalf("enrichment %d = %s %s at %v, want %s %s at %v", i, e.InstanceID, e.State, e.FetchedAt, o.InstanceID, o.State, sent)
				}
				if e.Instance.Name != "name of "+o.InstanceID || e.Instance.Zone != "ap-guangzhou-3" || e.Operation.RequestID != "req-"+o.InstanceID {
					t.Fatalf("enrichment %d not built like the Enricher's: %+v", i, e)
				}
			}
		})
	}
	t.Run("no Response", func(t *testing.T) {
		if _, err := parseDescribePage(0, &cvmapi.DescribeInstancesResponse{}, sent); !errors.Is(err, ErrMalformed) {
			t.Fatalf("error = %v, want ErrMalformed", err)
		}
		if _, err := parseDescribePage(0, nil, sent); !errors.Is(err, ErrMalformed) {
			t.Fatalf("error = %v, want ErrMalformed", err)
		}
	})
}

// TestAccumulatorDescribedFollowsTheKeptObservation: an instance read
// twice has one entry, the latest one that agrees with the observation
// kept; an instance in conflict has none.
func TestAccumulatorDescribedFollowsTheKeptObservation(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	obs := func(id, st string) watcher.Observation {
		return watcher.Observation{InstanceID: id, State: watcher.State(st)}
	}
	en := func(id, st, req string, at time.Time) watcher.Enrichment {
		return watcher.Enrichment{InstanceID: id, State: watcher.State(st), FetchedAt: at, Operation: watcher.Operation{RequestID: req}}
	}
	statusPage := page{total: 4, items: []watcher.Observation{obs("ins-a", "RUNNING"), obs("ins-c", "RUNNING")}}
	first := page{total: 4, offset: 100,
		items:     []watcher.Observation{obs("ins-b", "STOPPED"), obs("ins-c", "STOPPED"), obs("ins-d", "RUNNING")},
		described: []watcher.Enrichment{en("ins-b", "STOPPED", "r1", t0), en("ins-c", "STOPPED", "r1", t0), en("ins-d", "RUNNING", "r1", t0)}}
	second := page{total: 4, offset: 200,
		items:     []watcher.Observation{obs("ins-b", "STOPPED"), obs("ins-a", "RUNNING")},
		described: []watcher.Enrichment{en("ins-b", "STOPPED", "r2", t0.Add(time.Second)), en("ins-a", "RUNNING", "r2", t0.Add(time.Second))}}
	for _, order := range [][]page{{statusPage, first, second}, {second, first, statusPage}} {
		acc := newAccumulator()
		for _, p := range order {
			acc.add(p)
		}
		got := acc.describedSorted()
		want := []watcher.Enrichment{
			en("ins-a", "RUNNING", "r2", t0.Add(time.Second)), // agrees with the status page
			en("ins-b", "STOPPED", "r2", t0.Add(time.Second)), // the later of two
			// ins-c: two states, in conflict: no entry
			en("ins-d", "RUNNING", "r1", t0),
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("described = %+v\nwant %+v", got, want)
		}
		if got, want := acc.describedPages, 2; got != want {
			t.Fatalf("described pages = %d, want %d", got, want)
		}
		if !slices.Contains(acc.unreadable(), "ins-c") {
			t.Fatalf("ins-c in conflict is not unreadable: %v", acc.unreadable())
		}
	}
}

func TestSameOrder(t *testing.T) {
	ids := func(n, from int) []string {
		var out []string
		for i := range n {
			out = append(out, string(rune('A'+from+i)))
		}
		return out
	}
	a := ids(20, 0)
	tests := []struct {
		name string
		b    []string
		want bool
	}{
		{"same", ids(20, 0), true},
		{"shifted by two creations", append([]string{"x", "y"}, a[:18]...), true},
		{"reversed", reversed(a), false},
		{"another set", ids(20, 30), false},
		{"two swapped", append([]string{a[1], a[0]}, a[2:]...), false},
	}
	for _, tt := range tests {
		if got := sameOrder(a, tt.b); got != tt.want {
			t.Errorf("%s: sameOrder = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
