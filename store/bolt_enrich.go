package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Enrichments returns the stored enrichment of each of ids that has one,
// read in one transaction.
func (b *Bolt) Enrichments(ctx context.Context, target watcher.Target, ids []string) (map[string]watcher.Enrichment, error) {
	if err := b.acquire(); err != nil {
		return nil, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return nil, fmt.Errorf("enrichments: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("enrichments %s: %w", target, err)
	}
	out := make(map[string]watcher.Enrichment, len(ids))
	err = b.view(nil, func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil || tb == nil || tb.enrich == nil {
			return err
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			v := tb.enrich.Get([]byte(id))
			if v == nil {
				continue
			}
			e, err := decodeEnrichment([]byte(id), v)
			if err != nil {
				return b.corrupt(fmt.Errorf("enrichment %s: %w", watcher.Quote(id), err))
			}
			out[id] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enrichments %s: %w", target, err)
	}
	return out, nil
}

// PutEnrichments stores es in one fsynced transaction, creating the
// target's buckets if needed. It refuses, storing nothing, an enrichment
// with an empty or oversized instance ID or a time outside the storable
// range.
func (b *Bolt) PutEnrichments(ctx context.Context, target watcher.Target, es []watcher.Enrichment) error {
	if err := b.acquire(); err != nil {
		return err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return fmt.Errorf("put enrichments: %w", err)
	}
	if err := validateEnrich(es); err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	ec, err := encodeCommit(watcher.Commit{Enrich: es})
	if err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	if len(es) == 0 {
		return nil
	}
	err = b.update(func(tx *bbolt.Tx) error {
		tb, err := createTarget(tx, key)
		if err != nil {
			return err
		}
		return tb.putEnrich(ec.enrich)
	})
	if err != nil {
		return fmt.Errorf("put enrichments %s: %w", target, err)
	}
	return nil
}

// putEnrich writes encoded enrichments, creating the bucket if needed.
func (tb *targetBuckets) putEnrich(kvs []keyValue) error {
	if len(kvs) == 0 {
		return nil
	}
	bkt, err := tb.enrichBucket()
	if err != nil {
		return err
	}
	bkt.FillPercent = recordsFillPercent
	for _, kv := range kvs {
		if err := bkt.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("enrichment %s: %w", watcher.Quote(string(kv.k)), err)
		}
	}
	return nil
}
