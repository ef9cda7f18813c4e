package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Bucket and key names of the file layout (see the package documentation).
const (
	bucketFormat  = "cvmwatch"
	bucketTargets = "targets"
	bucketRecords = "records"
	bucketOutbox  = "outbox"
	bucketMeta    = "meta"
	bucketEnrich  = "enrich"
	// bucketAttribution holds pending attributions by event id.
	bucketAttribution = "attribution"

	keyFormat = "format"
	keyScan   = "scan"
	keyNext   = "next"

	// formatVersion is the file format this build writes and the newest it
	// reads.
	formatVersion = 1
)

// targetKey returns the key of target's bucket: account, 0x00, region. It
// refuses targets that are not safe subject tokens, so the separator cannot
// occur inside either part and keys sort by account, then region.
func targetKey(t watcher.Target) ([]byte, error) {
	if err := validateTarget(t); err != nil {
		return nil, err
	}
	k := make([]byte, 0, len(t.Account)+1+len(t.Region))
	k = append(k, t.Account...)
	k = append(k, 0)
	return append(k, t.Region...), nil
}

// parseTargetKey is the inverse of targetKey.
func parseTargetKey(k []byte) (watcher.Target, error) {
	acct, region, ok := bytes.Cut(k, []byte{0})
	t := watcher.Target{Account: string(acct), Region: string(region)}
	if !ok {
		return watcher.Target{}, fmt.Errorf("target key %s has no separator", watcher.Quote(string(k)))
	}
	if err := validateTarget(t); err != nil {
		return watcher.Target{}, err
	}
	return t, nil
}

// appendSeqKey appends the outbox key of seq: 8 bytes, big-endian, so that
// byte order is numeric order.
func appendSeqKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, seq)
}

// parseSeqKey is the inverse of appendSeqKey.
func parseSeqKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("outbox key of %d bytes, want 8", len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}
