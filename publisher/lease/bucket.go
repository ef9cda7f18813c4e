package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBucket = "CVMWATCH_LEASES"
	DefaultTTL    = 15 * time.Second
)

// EnsureBucket returns the lease bucket, creating it with a bucket-level
// TTL of ttl (history 1, file storage, replicas copies). An existing
// bucket with another TTL is refused: replicas must agree on the lease
// length.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: "cvmwatch: target leases and live replicas",
			TTL: ttl, History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", name, err)
	}
	if st.TTL() != ttl {
		return nil, fmt.Errorf("lease bucket %s has a TTL of %s, not %s: every replica must use the same ha.lease_ttl", name, st.TTL(), ttl)
	}
	return kv, nil
}
