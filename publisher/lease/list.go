package lease

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// ErrNoBucket is wrapped by List's error when the lease bucket does not
// exist: no replica ever ran with HA on this cluster.
var ErrNoBucket = errors.New("no lease bucket")

// Holder is a lease as the bucket holds it, whoever holds it.
type Holder struct {
	Target  watcher.Target
	Replica string
	// Since is when the holder took the lease, by the holder's clock.
	Since time.Time
	// Renewed is when the server stored the write that took or last
	// renewed it, by the server's clock: the lease ends TTL after it
	// unless renewed again.
	Renewed time.Time
}

// Live is a replica registered in the bucket within the last TTL.
type Live struct {
	Replica string
	// Seen is when the server stored its last registration.
	Seen time.Time
}

// Listing is what the lease bucket says at one moment.
type Listing struct {
	// TTL is the bucket's lease length (ha.lease_ttl).
	TTL time.Duration
	// Leases are the leases not expired, sorted by target.
	Leases []Holder
	// Replicas are the live replicas, sorted by id.
	Replicas []Live
}

// Owner returns t's holder, if any.
func (l Listing) Owner(t watcher.Target) (Holder, bool) {
	i := slices.IndexFunc(l.Leases, func(h Holder) bool { return h.Target == t })
	if i < 0 {
		return Holder{}, false
	}
	return l.Leases[i], true
}

// List reads the lease bucket (default DefaultBucket) with one watcher of
// its current values: every lease not yet expired with its holder, and
// the live replicas. It takes no lease and writes nothing, so any client
// may call it, replica or not. A key whose holder stopped renewing is
// listed until the server expires it (TTL after Renewed); by then its
// holder no longer counts it valid.
func List(ctx context.Context, js jetstream.JetStream, bucket string) (Listing, error) {
	bucket = cmp.Or(bucket, DefaultBucket)
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Listing{}, fmt.Errorf("lease bucket %s: %w", bucket, ErrNoBucket)
	}
	if err != nil {
		return Listing{}, fmt.Errorf("lease bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return Listing{}, fmt.Errorf("lease bucket %s: %w", bucket, err)
	}
	out := Listing{TTL: st.TTL()}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return Listing{}, fmt.Errorf("lease bucket %s: %w", bucket, err)
	}
	defer w.Stop()
	for {
		var e jetstream.KeyValueEntry
		ok := true
		select {
		case <-ctx.Done():
			return Listing{}, fmt.Errorf("lease bucket %s: %w", bucket, ctx.Err())
		case e, ok = <-w.Updates():
		}
		if !ok { // the watcher stopped (the connection went) before the end of the current values
			return Listing{}, fmt.Errorf("lease bucket %s: the listing ended before its last value", bucket)
		}
		if e == nil { // the current values are all delivered
			break
		}
		if id, ok := strings.CutPrefix(e.Key(), registryPrefix); ok {
			out.Replicas = append(out.Replicas, Live{Replica: id, Seen: e.Created()})
			continue
		}
		rest, ok := strings.CutPrefix(e.Key(), "lease.")
		account, region, two := strings.Cut(rest, ".")
		if !ok || !two {
			continue // not a key of ours
		}
		var v value
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return Listing{}, fmt.Errorf("lease bucket %s, key %s: %w", bucket, e.Key(), err)
		}
		out.Leases = append(out.Leases, Holder{Target: watcher.Target{Account: account, Region: region},
			Replica: v.Replica, Since: v.Since, Renewed: e.Created()})
	}
	slices.SortFunc(out.Leases, func(a, b Holder) int {
		return cmp.Or(cmp.Compare(a.Target.Account, b.Target.Account), cmp.Compare(a.Target.Region, b.Target.Region))
	})
	slices.SortFunc(out.Replicas, func(a, b Live) int { return cmp.Compare(a.Replica, b.Replica) })
	return out, nil
}
