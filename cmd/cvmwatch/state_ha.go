package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher/lease"
)

// haState is the lease bucket's view in `cvmwatch state --server`: who
// owns what, read from the bucket itself rather than from one replica.
type haState struct {
	LeaseTTL string `json:"leaseTTL"`
	// Replicas are the live replicas (registered within the TTL).
	Replicas []haReplicaState `json:"replicas"`
	// Leases are the leases not expired, by target.
	Leases []haLeaseState `json:"leases"`
	// Unowned are the targets shown that no replica holds.
	Unowned []string `json:"unowned"`
}

type haReplicaState struct {
	Replica string    `json:"replica"`
	Seen    time.Time `json:"seen"`
}

type haLeaseState struct {
	Target  string    `json:"target"`
	Replica string    `json:"replica"`
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
}

// addOwners reads the lease bucket and gives each of st's targets its
// owner and since when, adds a row for each leased target that has no
// scan summary yet, and lists the targets nobody holds. No bucket (no
// replica ever ran with ha): st is left as it is.
func addOwners(ctx context.Context, js jetstream.JetStream, st *stateView, only string, now time.Time) error {
	ls, err := lease.List(ctx, js, "")
	if errors.Is(err, lease.ErrNoBucket) {
		return nil
	}
	if err != nil {
		return err
	}
	ha := &haState{LeaseTTL: ls.TTL.String(), Replicas: []haReplicaState{}, Leases: []haLeaseState{}, Unowned: []string{}}
	for _, r := range ls.Replicas {
		ha.Replicas = append(ha.Replicas, haReplicaState{Replica: r.Replica, Seen: r.Seen})
	}
	shown := map[string]bool{}
	for i := range st.targets {
		shown[st.targets[i].Target] = true
	}
	for _, h := range ls.Leases {
		name := h.Target.String()
		if only != "" && name != only {
			continue
		}
		ha.Leases = append(ha.Leases, haLeaseState{Target: name, Replica: h.Replica, Since: h.Since, Renewed: h.Renewed})
		if !shown[name] {
			st.targets = append(st.targets, targetHealth{Target: name, ByState: map[string]int{},
				Reason: "no scan summary stored yet"})
		}
	}
	slices.SortFunc(st.targets, func(a, b targetHealth) int { return strings.Compare(a.Target, b.Target) })
	owners := map[string]lease.Holder{}
	for _, h := range ls.Leases {
		owners[h.Target.String()] = h
	}
	for i := range st.targets {
		t := &st.targets[i]
		if h, ok := owners[t.Target]; ok {
			since := h.Since
			t.Owner, t.OwnerSince = h.Replica, &since
		} else {
			ha.Unowned = append(ha.Unowned, t.Target)
		}
	}
	st.ha = ha
	st.source += fmt.Sprintf("; leases from bucket %s (lease_ttl %s), read %s", lease.DefaultBucket, ha.LeaseTTL,
		now.Format(time.RFC3339))
	return nil
}

// printLeases prints the live replicas and, per target, its owner, since
// when and how long ago the lease was last renewed.
func printLeases(w io.Writer, targets []targetHealth, ha *haState) {
	now := time.Now()
	live := make([]string, 0, len(ha.Replicas))
	for _, r := range ha.Replicas {
		live = append(live, fmt.Sprintf("%s (seen %s ago)", r.Replica, now.Sub(r.Seen).Round(time.Second)))
	}
	fmt.Fprintf(w, "replicas: %s\n", cmp.Or(strings.Join(live, ", "), "none live"))
	renewed := map[string]time.Time{}
	for _, l := range ha.Leases {
		renewed[l.Target] = l.Renewed
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tOWNER\tSINCE\tRENEWED")
	for _, t := range targets {
		owner, since, ren := "none", "-", "-"
		if t.Owner != "" {
			owner = t.Owner
			since = t.OwnerSince.Format(time.RFC3339)
			ren = now.Sub(renewed[t.Target]).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Target, owner, since, ren)
	}
	tw.Flush()
}
