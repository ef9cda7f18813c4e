package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Flags of an encoded pending attribution.
const (
	paObservedAt = 1 << 0
	paDeadline   = 1 << 1
	paAllFlags   = paObservedAt | paDeadline
)

// appendActor appends Username | SourceIP | EventName.
func appendActor(dst []byte, a *watcher.Actor) []byte {
	for _, s := range []string{a.Username, a.SourceIP, a.EventName} {
		dst = appendString(dst, s)
	}
	return dst
}

func (d *decoder) actor() watcher.Actor {
	return watcher.Actor{Username: d.str("actor username", nil), SourceIP: d.str("actor source ip", nil),
		EventName: d.str("actor event name", nil)}
}

// appendPending appends the value encoding of a pending attribution (its
// EventID is the key and not part of the value):
//
//	version | flags | InstanceID | Operation | ObservedAt? | Deadline?
func appendPending(dst []byte, p watcher.PendingAttribution) ([]byte, error) {
	if err := checkTime(p.ObservedAt); err != nil {
		return dst, fmt.Errorf("observed at: %w", err)
	}
	if err := checkTime(p.Deadline); err != nil {
		return dst, fmt.Errorf("deadline: %w", err)
	}
	flags := timeFlag(p.ObservedAt, paObservedAt) | timeFlag(p.Deadline, paDeadline)
	dst = append(dst, encVersion, flags)
	dst = appendString(dst, p.InstanceID)
	dst = appendOperation(dst, &p.Operation)
	if flags&paObservedAt != 0 {
		dst = binary.AppendVarint(dst, p.ObservedAt.UnixNano())
	}
	if flags&paDeadline != 0 {
		dst = binary.AppendVarint(dst, p.Deadline.UnixNano())
	}
	return dst, nil
}

// decodePending decodes the pending attribution stored under key.
func decodePending(key, val []byte) (watcher.PendingAttribution, error) {
	if len(key) == 0 {
		return watcher.PendingAttribution{}, fmt.Errorf("pending attribution: empty key")
	}
	d := decoder{what: "pending attribution", b: val}
	flags := d.header(paAllFlags)
	p := watcher.PendingAttribution{EventID: string(key)}
	p.InstanceID = d.str("instance id", nil)
	p.Operation = d.operation()
	if flags&paObservedAt != 0 {
		p.ObservedAt = d.time("observed at")
	}
	if flags&paDeadline != 0 {
		p.Deadline = d.time("deadline")
	}
	if err := d.finish(); err != nil {
		return watcher.PendingAttribution{}, err
	}
	return p, nil
}
