package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// appendOutbox appends encoded events to tb's outbox under the target's
// next sequences and returns the first and last, or 0, 0 for none.
func (b *Bolt) appendOutbox(tb *targetBuckets, events [][]byte) (first, last uint64, err error) {
	n := uint64(len(events))
	if n == 0 {
		return 0, 0, nil
	}
	next, err := tb.readNext()
	if err != nil {
		return 0, 0, b.corrupt(err)
	}
	// The outbox only grows at its end: fill pages completely.
	tb.outbox.FillPercent = 1.0
	keys := make([]byte, 0, 8*n)
	for i, v := range events {
		keys = appendSeqKey(keys, next+uint64(i))
		k := keys[len(keys)-8:]
		if err := tb.outbox.Put(k, v); err != nil {
			return 0, 0, fmt.Errorf("outbox %d: %w", next+uint64(i), err)
		}
	}
	if err := tb.meta.Put([]byte(keyNext), appendSeqKey(nil, next+n)); err != nil {
		return 0, 0, fmt.Errorf("next sequence: %w", err)
	}
	return next, next + n - 1, nil
}

// putPending writes encoded pending attributions, creating the bucket if
// needed.
func (tb *targetBuckets) putPending(kvs []keyValue) error {
	if len(kvs) == 0 {
		return nil
	}
	if tb.pending == nil {
		bkt, err := tb.parent.CreateBucket([]byte(bucketAttribution))
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bucketAttribution, err)
		}
		tb.pending = bkt
	}
	for _, kv := range kvs {
		if err := tb.pending.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("pending attribution %s: %w", watcher.Quote(string(kv.k)), err)
		}
	}
	return nil
}

// PendingAttributions returns target's pending attributions in event ID
// order, read in one transaction.
func (b *Bolt) PendingAttributions(ctx context.Context, target watcher.Target) ([]watcher.PendingAttribution, error) {
	if err := b.acquire(); err != nil {
		return nil, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return nil, fmt.Errorf("pending attributions: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pending attributions %s: %w", target, err)
	}
	var out []watcher.PendingAttribution
	err = b.view(nil, func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil || tb == nil || tb.pending == nil {
			return err
		}
		return tb.pending.ForEach(func(k, v []byte) error {
			p, err := decodePending(k, v)
			if err != nil {
				return b.corrupt(fmt.Errorf("pending attribution %s: %w", watcher.Quote(string(k)), err))
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("pending attributions %s: %w", target, err)
	}
	return out, nil
}

// ResolveAttributions, in one fsynced transaction, appends to the outbox
// each follow-up whose attribution is still pending and removes it, and
// removes the attributions done names. It refuses, changing nothing, a
// follow-up without Completes or with a time outside the storable range.
func (b *Bolt) ResolveAttributions(ctx context.Context, target watcher.Target, events []watcher.Event, done []string) (int, error) {
	if err := b.acquire(); err != nil {
		return 0, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return 0, fmt.Errorf("resolve attributions: %w", err)
	}
	if err := validateFollowUps(events); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", target, err)
	}
	encoded := make([][]byte, len(events))
	for i, e := range events {
		if encoded[i], err = appendEvent(nil, e); err != nil {
			return 0, fmt.Errorf("resolve attributions %s: follow-up %d: %w", target, i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("resolve attributions %s: %w", target, err)
	}
	appended := 0
	err = b.update(func(tx *bbolt.Tx) error {
		appended = 0
		tb, err := openTarget(tx, key)
		if err != nil {
			return err
		}
		if tb == nil || tb.pending == nil {
			return errNothingToDo
		}
		var add [][]byte
		for i, e := range events {
			if tb.pending.Get([]byte(e.Completes)) == nil {
				continue // resolved already: never append it twice
			}
			if err := tb.pending.Delete([]byte(e.Completes)); err != nil {
				return fmt.Errorf("delete pending %s: %w", watcher.Quote(e.Completes), err)
			}
			add = append(add, encoded[i])
		}
		deleted := 0
		for _, id := range done {
			if tb.pending.Get([]byte(id)) == nil {
				continue
			}
			if err := tb.pending.Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete pending %s: %w", watcher.Quote(id), err)
			}
			deleted++
		}
		if len(add) == 0 && deleted == 0 {
			return errNothingToDo
		}
		if _, _, err := b.appendOutbox(tb, add); err != nil {
			return err
		}
		appended = len(add)
		return nil
	})
	if err != nil && err != errNothingToDo {
		return 0, fmt.Errorf("resolve attributions %s: %w", target, err)
	}
	return appended, nil
}
