package cvmsim

import (
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimit is the documented quota of DescribeInstancesStatus and
// DescribeInstances: 40 requests per second.
const DefaultRateLimit = 40

type quotaKey struct{ action, secretID string }

// quota is one token bucket per (action, SecretId), like Tencent's per API
// and sub-account limit. Guarded by Server.mu.
type quota struct {
	unlimited bool
	limit     rate.Limit
	burst     int
	buckets   map[quotaKey]*rate.Limiter
}

func newQuota(perSecond float64, burst int) quota {
	return quota{
		unlimited: perSecond < 0,
		limit:     rate.Limit(perSecond),
		burst:     burst,
		buckets:   map[quotaKey]*rate.Limiter{},
	}
}

// allow takes a token for (action, secretID) at now (real time) and reports
// whether one was available. Only served actions and known SecretIds reach
// it, so the map stays small.
func (q *quota) allow(action, secretID string, now time.Time) bool {
	if q.unlimited {
		return true
	}
	k := quotaKey{action, secretID}
	l := q.buckets[k]
	if l == nil {
		l = rate.NewLimiter(q.limit, q.burst)
		q.buckets[k] = l
	}
	return l.AllowN(now, 1)
}
