package cvmsim

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimit is the documented quota of DescribeInstancesStatus and
// DescribeInstances: 40 requests per second.
const DefaultRateLimit = 40

// DefaultAuditRateLimit is the documented quota of CloudAudit LookUpEvents:
// 20 requests per second.
const DefaultAuditRateLimit = 20

type quotaKey struct{ action, secretID string }

// bucketSpec is the rate and burst of one action's buckets.
type bucketSpec struct {
	unlimited bool
	limit     rate.Limit
	burst     int
}

func newBucketSpec(perSecond float64, burst int) bucketSpec {
	return bucketSpec{unlimited: perSecond < 0, limit: rate.Limit(perSecond), burst: burst}
}

// quota is one token bucket per (action, SecretId), like Tencent's per API
// and sub-account limit. Guarded by Server.mu.
type quota struct {
	spec    bucketSpec            // the CVM actions'
	actions map[string]bucketSpec // actions with their own rate
	buckets map[quotaKey]*rate.Limiter
}

// newQuota makes the quota: perSecond and burst for every action but those
// in own, which have their own rate (negative: unlimited) and a burst of
// ceil(rate).
func newQuota(perSecond float64, burst int, own map[string]float64) quota {
	q := quota{
		spec:    newBucketSpec(perSecond, burst),
		actions: map[string]bucketSpec{},
		buckets: map[quotaKey]*rate.Limiter{},
	}
	for action, r := range own {
		q.actions[action] = newBucketSpec(r, int(math.Ceil(r)))
	}
	return q
}

// allow takes a token for (action, secretID) at now (real time) and reports
// whether one was available. Only served actions and known SecretIds reach
// it, so the map stays small.
func (q *quota) allow(action, secretID string, now time.Time) bool {
	spec, ok := q.actions[action]
	if !ok {
		spec = q.spec
	}
	if spec.unlimited {
		return true
	}
	k := quotaKey{action, secretID}
	l := q.buckets[k]
	if l == nil {
		l = rate.NewLimiter(spec.limit, spec.burst)
		q.buckets[k] = l
	}
	return l.AllowN(now, 1)
}
