package watcher

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Enrichment is what DescribeInstances said about one instance at one time:
// the identity events carry as data.instance and the latest operation. The
// store keeps one per instance (the instance's previous enrichment), never
// the loop's in-memory snapshot. Every string is data from the API: it is
// JSON-escaped where it is published and never becomes a subject token.
type Enrichment struct {
	InstanceID string
	// State is the instance's state in the same answer; it is not validated
	// and is used only to decide whether a fresh answer may advance
	// Operation (see Reconcile).
	State State
	// FetchedAt is when the request that described it was sent; for a
	// stored enrichment whose Operation was held (see Reconcile), when the
	// request of the answer that showed that Operation was sent. An
	// operation newer than Operation happened after FetchedAt.
	FetchedAt time.Time
	Instance  Instance
	// Operation is the instance's latest operation as recorded at this
	// enrichment (LatestOperation*); zero when the API reported none.
	Operation Operation
}

// Instance is the identity of an instance, published as data.instance.
type Instance struct {
	Name         string
	Zone         string
	InstanceType string
	PrivateIPs   []string
	PublicIPs    []string
	// Tags are sorted by key, keys unique (the first of duplicate keys is
	// kept), at most MaxTags.
	Tags           []Tag
	ChargeType     string
	CreatedTime    string
	ExpiredTime    string // empty when not set (postpaid)
	RestrictState  string
	IsolatedSource string
	// Truncated is set when the values were cut to fit the limits (see
	// Bound).
	Truncated bool
}

// Tag is one key/value tag of an instance.
type Tag struct {
	Key, Value string
}

// Operation is an instance's latest operation (LatestOperation,
// LatestOperationState, LatestOperationRequestId, LatestOperationErrorMsg),
// published as data.operation. The request id is what decides whether an
// operation is new, and what a later attribution (CloudAudit LookUpEvents by
// RequestId) will look up.
type Operation struct {
	Name      string
	State     string
	RequestID string
	Error     string
}

// Limits of the enrichment one event carries.
const (
	// MaxTags is the most tags data.instance carries; the rest are left
	// out (keys sorted, the first MaxTags kept) and Truncated is set.
	MaxTags = 50
	// MaxEnrichmentBytes bounds the JSON of data.instance and
	// data.operation together.
	MaxEnrichmentBytes = 4096
	// maxIPs is the most addresses kept per list.
	maxIPs = 10
	// maxValue bounds a free-text value (name, tag value, error message),
	// maxWord a code-like one (zone, type, states, request id, tag key).
	maxValue = 256
	maxWord  = 128
)

// MaxTagKeyBytes is the longest tag key an event carries; a longer one is
// cut (and Truncated set).
const MaxTagKeyBytes = maxWord

// Enricher describes a target's instances for enrichment. Implementations
// are safe for concurrent use, own their retry policy and rate limiting
// (their own quota, apart from the Source's), and never panic on a
// malformed answer. The slices they return are the caller's.
type Enricher interface {
	// Describe returns what the API says about ids, in any order, each at
	// most once; FetchedAt is left zero (the caller sets it). An ID missing
	// from the result was not described: absent, unusable, or its request
	// failed. The result is usable even when err is not nil; err wraps
	// ErrAuth when retrying cannot help until permissions change, and ctx's
	// error when the caller's deadline ran out.
	Describe(ctx context.Context, ids []string) ([]Enrichment, error)

	// List pages through every instance of the target at the slow pace of a
	// background refresh, calling fn with each page in order; FetchedAt is
	// when the page's request was sent. An error from fn stops it and is
	// returned.
	List(ctx context.Context, fn func([]Enrichment) error) error
}

// Bound cuts e to the documented limits, the same way every time: each
// string to maxValue or maxWord bytes (at a UTF-8 boundary), each address
// list to 10 entries, tags deduplicated and sorted by key and cut to
// MaxTags; then, while the JSON of data.instance and data.operation is
// over MaxEnrichmentBytes less the room of an actor (MaxActorBytes;
// values full of characters JSON escapes), tags
// are dropped from the end and, once none is left, the longest value is
// halved. Instance.Truncated says whether anything was cut. Bound returns
// a copy; e is not changed.
func (e Enrichment) Bound() Enrichment {
	in := &e.Instance
	cut := false
	str := func(s *string, n int) {
		if len(*s) > n {
			*s, cut = cutUTF8(*s, n), true
		}
	}
	str(&in.Name, maxValue)
	for _, s := range []*string{&in.Zone, &in.InstanceType, &in.ChargeType, &in.CreatedTime, &in.ExpiredTime,
		&in.RestrictState, &in.IsolatedSource} {
		str(s, maxWord)
	}
	ips := func(l []string) []string {
		if len(l) > maxIPs {
			l, cut = l[:maxIPs], true
		}
		out := slices.Clone(l)
		for i := range out {
			str(&out[i], maxWord)
		}
		return out
	}
	in.PrivateIPs, in.PublicIPs = ips(in.PrivateIPs), ips(in.PublicIPs)
	tags := make([]Tag, 0, min(len(in.Tags), MaxTags))
	seen := make(map[string]bool, len(in.Tags))
	for _, t := range in.Tags {
		str(&t.Key, maxWord)
		str(&t.Value, maxValue)
		if seen[t.Key] {
			cut = true
			continue
		}
		seen[t.Key] = true
		tags = append(tags, t)
	}
	slices.SortStableFunc(tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	if len(tags) > MaxTags {
		tags, cut = tags[:MaxTags], true
	}
	in.Tags = tags
	op := &e.Operation
	str(&op.Name, maxWord)
	str(&op.State, maxWord)
	str(&op.RequestID, maxWord)
	str(&op.Error, maxValue)
	// Room is kept for data.operation.actor, which a later lookup may add.
	for len(appendOperation(appendInstance(nil, in), op)) > MaxEnrichmentBytes-MaxActorBytes-len(`,"truncated":true,"actor":`) {
		cut = true
		if len(in.Tags) > 0 {
			in.Tags = in.Tags[:len(in.Tags)-1]
			continue
		}
		longest := &in.Name
		for _, s := range e.strings() {
			if len(*s) > len(*longest) {
				longest = s
			}
		}
		if *longest == "" {
			break // only keys left: cannot happen with MaxEnrichmentBytes this large
		}
		*longest = cutUTF8(*longest, len(*longest)/2)
	}
	in.Truncated = in.Truncated || cut
	return e
}

// strings returns pointers to every string value of e's instance (tags
// aside) and operation.
func (e *Enrichment) strings() []*string {
	in, op := &e.Instance, &e.Operation
	out := []*string{&in.Name, &in.Zone, &in.InstanceType, &in.ChargeType, &in.CreatedTime, &in.ExpiredTime,
		&in.RestrictState, &in.IsolatedSource, &op.Name, &op.State, &op.RequestID, &op.Error}
	for i := range in.PrivateIPs {
		out = append(out, &in.PrivateIPs[i])
	}
	for i := range in.PublicIPs {
		out = append(out, &in.PublicIPs[i])
	}
	return out
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// end inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// Equal reports whether two enrichments hold the same values (FetchedAt
// aside).
func (e Enrichment) Equal(o Enrichment) bool {
	return e.InstanceID == o.InstanceID && e.State == o.State && e.Operation == o.Operation &&
		e.Instance.Equal(o.Instance)
}

// Equal reports whether two instances hold the same values.
func (in Instance) Equal(o Instance) bool {
	return in.Name == o.Name && in.Zone == o.Zone && in.InstanceType == o.InstanceType &&
		slices.Equal(in.PrivateIPs, o.PrivateIPs) && slices.Equal(in.PublicIPs, o.PublicIPs) &&
		slices.Equal(in.Tags, o.Tags) && in.ChargeType == o.ChargeType && in.CreatedTime == o.CreatedTime &&
		in.ExpiredTime == o.ExpiredTime && in.RestrictState == o.RestrictState &&
		in.IsolatedSource == o.IsolatedSource && in.Truncated == o.Truncated
}

// Isolated sources that explain a SHUTDOWN without an operation.
const (
	IsolatedArrear = "ARREAR"
	IsolatedExpire = "EXPIRE"
)

// Attribute returns the operation an event to state `to` carries, given the
// instance's enrichment now and at its previous enrichment (hadPrev false:
// none, a first sighting). The rules: a first sighting carries none; an
// operation carries only when its request id is set and differs from the
// previous enrichment's (an operation already recorded is never blamed for
// a new change); a SHUTDOWN while the instance is isolated for arrears or
// expiry carries none (isolatedSource says why).
func Attribute(now Enrichment, prev Enrichment, hadPrev bool, to State) *Operation {
	op := now.Operation
	switch {
	case !hadPrev, op.RequestID == "", op.RequestID == prev.Operation.RequestID:
		return nil
	case to == StateShutdown && (now.Instance.IsolatedSource == IsolatedArrear || now.Instance.IsolatedSource == IsolatedExpire):
		return nil
	}
	return &op
}

// OperationOperating is LatestOperationState of an operation in progress.
const OperationOperating = "OPERATING"
