package notifier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// SentStore remembers which events were told to which sink by which route,
// for the dedupe horizon, so that an event delivered again (after a crash
// between posting and acknowledging) is not told twice. Keys are
// "<route>.<sink>.<event id>". Implementations are safe for concurrent
// use.
type SentStore interface {
	// Sent reports whether key was marked within the horizon.
	Sent(ctx context.Context, key string) (bool, error)
	// Mark records keys as sent. It returns once they are durable.
	Mark(ctx context.Context, keys []string) error
}

// SentKey is the SentStore key of event id told to sink by route.
func SentKey(route, sink, id string) string { return route + "." + sink + "." + id }

// KVSent is a SentStore in a JetStream key-value bucket whose TTL is the
// dedupe horizon: it survives the notifier's restarts and its machine's
// loss, as the stream does.
type KVSent struct {
	kv jetstream.KeyValue
}

var _ SentStore = (*KVSent)(nil)

// OpenKVSent creates or opens the bucket (file storage, one value per key,
// entries expiring after horizon) with replicas copies, chosen as for
// every stream cvmwatch creates (publisher.CreateReplicated: a number, or
// publisher.AutoReplicas). An existing bucket keeps its own count unless
// replicas asks for more; it is never scaled down. It returns the count
// chosen and why, for the log.
func OpenKVSent(ctx context.Context, js jetstream.JetStream, bucket string, horizon time.Duration, replicas int) (*KVSent, publisher.ReplicaChoice, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket: bucket, Description: "cvmwatch notify: events told, per route and sink",
		TTL: horizon, History: 1, Storage: jetstream.FileStorage,
	}
	if kv, err := js.KeyValue(ctx, bucket); err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, publisher.ReplicaChoice{}, fmt.Errorf("sent-events bucket %s: %w", bucket, err)
		}
		have := 1
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil {
			have = max(bs.StreamInfo().Config.Replicas, 1)
		}
		cfg.Replicas = have
		choice := publisher.ReplicaChoice{Replicas: have, Reason: "existing bucket"}
		if replicas != publisher.AutoReplicas && replicas > have {
			cfg.Replicas, choice = replicas, publisher.ReplicaChoice{Replicas: replicas, Reason: "configured (scaled up)"}
		}
		if kv, err = js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return nil, publisher.ReplicaChoice{}, fmt.Errorf("sent-events bucket %s: %w", bucket, err)
		}
		return &KVSent{kv: kv}, choice, nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, publisher.ReplicaChoice{}, fmt.Errorf("sent-events bucket %s: %w", bucket, err)
	}
	var kv jetstream.KeyValue
	choice, err := publisher.CreateReplicated(ctx, js, replicas, func(ctx context.Context, n int) (err error) {
		cfg.Replicas = n
		kv, err = js.CreateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, publisher.ReplicaChoice{}, fmt.Errorf("sent-events bucket %s: %w", bucket, err)
	}
	return &KVSent{kv: kv}, choice, nil
}

// Sent reports whether the bucket holds key.
func (s *KVSent) Sent(ctx context.Context, key string) (bool, error) {
	_, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("sent-events bucket: %w", err)
	}
	return true, nil
}

// Mark puts every key, concurrently, and waits for all.
func (s *KVSent) Mark(ctx context.Context, keys []string) error {
	const parallel = 32
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	sem := make(chan struct{}, parallel)
	for i, k := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := s.kv.Put(ctx, k, []byte{'1'}); err != nil {
				errs[i] = fmt.Errorf("sent-events bucket: %w", err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MemSent is a SentStore in memory, for tests and dry runs: it forgets
// everything with the process.
type MemSent struct {
	mu   sync.Mutex
	keys map[string]bool
}

var _ SentStore = (*MemSent)(nil)

// Sent reports whether key was marked.
func (m *MemSent) Sent(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[key], nil
}

// Mark records keys.
func (m *MemSent) Mark(_ context.Context, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]bool{}
	}
	for _, k := range keys {
		m.keys[k] = true
	}
	return nil
}
