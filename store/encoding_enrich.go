package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// Flags of an encoded enrichment record.
const (
	enFetchedAt = 1 << 0
	enTruncated = 1 << 1
	enAllFlags  = enFetchedAt | enTruncated
)

// maxListLen bounds a decoded list (addresses, tags): far above what Bound
// lets through, so only a damaged value can exceed it.
const maxListLen = 1 << 12

// appendEnrichment appends the value encoding of an enrichment record (its
// InstanceID is the key and not part of the value).
func appendEnrichment(dst []byte, e watcher.Enrichment) ([]byte, error) {
	if err := checkTime(e.FetchedAt); err != nil {
		return dst, fmt.Errorf("fetched at: %w", err)
	}
	flags := timeFlag(e.FetchedAt, enFetchedAt)
	if e.Instance.Truncated {
		flags |= enTruncated
	}
	dst = append(dst, encVersion, flags)
	dst = appendString(dst, string(e.State))
	if flags&enFetchedAt != 0 {
		dst = binary.AppendVarint(dst, e.FetchedAt.UnixNano())
	}
	dst = appendInstance(dst, &e.Instance)
	return appendOperation(dst, &e.Operation), nil
}

// decodeEnrichment decodes the enrichment record stored under key.
func decodeEnrichment(key, val []byte) (watcher.Enrichment, error) {
	if len(key) == 0 {
		return watcher.Enrichment{}, fmt.Errorf("enrichment: empty key")
	}
	d := decoder{what: "enrichment", b: val}
	flags := d.header(enAllFlags)
	e := watcher.Enrichment{InstanceID: string(key)}
	e.State = watcher.State(d.str("state", nil))
	if flags&enFetchedAt != 0 {
		e.FetchedAt = d.time("fetched at")
	}
	e.Instance = d.instance()
	e.Instance.Truncated = flags&enTruncated != 0
	e.Operation = d.operation()
	if err := d.finish(); err != nil {
		return watcher.Enrichment{}, err
	}
	return e, nil
}

// appendInstance appends an instance's fields but Truncated (a flag of the
// enclosing value):
//
//	Name | Zone | InstanceType | n, PrivateIPs... | n, PublicIPs...
//	| n, (Key, Value)... | ChargeType | CreatedTime | ExpiredTime
//	| RestrictState | IsolatedSource
func appendInstance(dst []byte, in *watcher.Instance) []byte {
	dst = appendString(dst, in.Name)
	dst = appendString(dst, in.Zone)
	dst = appendString(dst, in.InstanceType)
	dst = appendStrings(dst, in.PrivateIPs)
	dst = appendStrings(dst, in.PublicIPs)
	dst = binary.AppendUvarint(dst, uint64(len(in.Tags)))
	for _, t := range in.Tags {
		dst = appendString(dst, t.Key)
		dst = appendString(dst, t.Value)
	}
	for _, s := range []string{in.ChargeType, in.CreatedTime, in.ExpiredTime, in.RestrictState, in.IsolatedSource} {
		dst = appendString(dst, s)
	}
	return dst
}

// appendOperation appends Name | State | RequestID | Error.
func appendOperation(dst []byte, op *watcher.Operation) []byte {
	for _, s := range []string{op.Name, op.State, op.RequestID, op.Error} {
		dst = appendString(dst, s)
	}
	return dst
}

func appendStrings(dst []byte, l []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for _, s := range l {
		dst = appendString(dst, s)
	}
	return dst
}

func (d *decoder) instance() watcher.Instance {
	var in watcher.Instance
	in.Name = d.str("name", nil)
	in.Zone = d.str("zone", nil)
	in.InstanceType = d.str("instance type", nil)
	in.PrivateIPs = d.strings("private ips")
	in.PublicIPs = d.strings("public ips")
	if n := d.listLen("tags"); n > 0 {
		in.Tags = make([]watcher.Tag, n)
		for i := range in.Tags {
			in.Tags[i] = watcher.Tag{Key: d.str("tag key", nil), Value: d.str("tag value", nil)}
		}
	}
	in.ChargeType = d.str("charge type", nil)
	in.CreatedTime = d.str("created time", nil)
	in.ExpiredTime = d.str("expired time", nil)
	in.RestrictState = d.str("restrict state", nil)
	in.IsolatedSource = d.str("isolated source", nil)
	return in
}

func (d *decoder) operation() watcher.Operation {
	return watcher.Operation{
		Name: d.str("operation name", nil), State: d.str("operation state", nil),
		RequestID: d.str("operation request id", nil), Error: d.str("operation error", nil),
	}
}

// listLen reads a list length, refusing one no stored list can have.
func (d *decoder) listLen(field string) int {
	n := d.uvarint(field)
	if n > maxListLen || n > uint64(len(d.b)) { // every entry takes a byte at least
		d.fail("%s: %d entries", field, n)
		return 0
	}
	return int(n)
}

func (d *decoder) strings(field string) []string {
	n := d.listLen(field)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str(field, nil)
	}
	return out
}
