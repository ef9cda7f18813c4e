package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Outbox returns up to max entries of target's outbox with Seq > after, in
// Seq order; none when max <= 0. The entries are fresh copies.
func (b *Bolt) Outbox(ctx context.Context, target watcher.Target, after uint64, max int) ([]watcher.OutboxEntry, error) {
	if err := b.acquire(); err != nil {
		return nil, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", target, err)
	}
	if max <= 0 || after == math.MaxUint64 {
		return nil, nil
	}
	var out []watcher.OutboxEntry
	err = b.view(nil, func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil || tb == nil {
			return err
		}
		c := tb.outbox.Cursor()
		lk, _ := c.Last()
		if lk == nil {
			return nil
		}
		last, err := parseSeqKey(lk)
		if err != nil {
			return b.corrupt(err)
		}
		if last <= after {
			return nil
		}
		// Sized once: the relay reads thousands of entries at a time, and
		// there are at most last-after of them.
		out = make([]watcher.OutboxEntry, 0, min(uint64(max), last-after))
		for k, v := c.Seek(appendSeqKey(nil, after+1)); k != nil && len(out) < max; k, v = c.Next() {
			e, err := decodeOutboxEntry(k, v)
			if err != nil {
				return b.corrupt(err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", target, err)
	}
	return out, nil
}

// errNothingToDo rolls back a read-write transaction that found nothing to
// change, so that bbolt writes nothing.
var errNothingToDo = errors.New("nothing to do")

// Acknowledge deletes target's outbox entries with Seq <= upTo in one
// transaction. When there is none (a repeated or lower upTo, an unknown
// target) it writes nothing and returns nil. The next sequence is kept
// apart, so sequences are never reused after the outbox empties.
func (b *Bolt) Acknowledge(ctx context.Context, target watcher.Target, upTo uint64) error {
	if err := b.acquire(); err != nil {
		return err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("acknowledge %s: %w", target, err)
	}
	err = b.update(func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil {
			return err
		}
		if tb == nil {
			return errNothingToDo
		}
		c := tb.outbox.Cursor()
		deleted := 0
		// After each delete, seek to the key just deleted, which lands on
		// the next one: bbolt's Cursor.Next after Delete can skip an
		// entry, and First would walk again over every leaf this
		// transaction has emptied (quadratic in the prefix length).
		for k, _ := c.First(); k != nil; k, _ = c.Seek(k) {
			seq, err := parseSeqKey(k)
			if err != nil {
				return b.corrupt(err)
			}
			if seq > upTo {
				break
			}
			k = bytes.Clone(k) // k points into the page Delete changes
			if err := c.Delete(); err != nil {
				return fmt.Errorf("delete %d: %w", seq, err)
			}
			deleted++
		}
		if deleted == 0 {
			return errNothingToDo
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToDo) {
		return fmt.Errorf("acknowledge %s up to %d: %w", target, upTo, err)
	}
	return nil
}

// OutboxStats reports the number of entries in target's outbox and the
// ObservedAt of the one with the lowest Seq (zero when empty). It reads two
// entries, not the whole outbox: sequences in the outbox are contiguous,
// since commits append at the end and Acknowledge deletes from the start.
func (b *Bolt) OutboxStats(ctx context.Context, target watcher.Target) (depth int, oldest time.Time, err error) {
	if err := b.acquire(); err != nil {
		return 0, time.Time{}, err
	}
	defer b.release()
	key, err := targetKey(target)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats %s: %w", target, err)
	}
	err = b.view(nil, func(tx *bbolt.Tx) error {
		tb, err := openTarget(tx, key)
		if err != nil || tb == nil {
			return err
		}
		c := tb.outbox.Cursor()
		fk, fv := c.First()
		if fk == nil {
			return nil
		}
		e, err := decodeOutboxEntry(fk, fv)
		if err != nil {
			return b.corrupt(err)
		}
		lk, _ := c.Last()
		last, err := parseSeqKey(lk)
		if err != nil {
			return b.corrupt(err)
		}
		if last < e.Seq {
			return b.corrupt(fmt.Errorf("outbox ends at %d before it starts at %d", last, e.Seq))
		}
		depth, oldest = int(last-e.Seq+1), e.Event.ObservedAt
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats %s: %w", target, err)
	}
	return depth, oldest, nil
}
