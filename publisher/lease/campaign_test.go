package lease_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher/lease"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gained drains m's changes and counts the gains and losses.
func gained(t *testing.T, m *lease.Manager) (gains, losses int) {
	t.Helper()
	for {
		select {
		case c := <-m.Changes():
			if c.Gained {
				gains++
			} else {
				losses++
			}
		default:
			return gains, losses
		}
	}
}

// TestCampaignLetsReplicasStartedTogetherShareAtOnce: replicas started
// together (a restart of all of them) each take only their share; without
// the campaign the first to tick takes every target and must hand most of
// them over again.
func TestCampaignLetsReplicasStartedTogetherShareAtOnce(t *testing.T) {
	targets := targetsOf(6)
	for _, tc := range []struct {
		name              string
		campaign          time.Duration
		wantFirstTakesAll bool
	}{
		{"without a campaign the first takes all", 0, true},
		{"with a campaign each takes its share", ttl / 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := mustJetStream(t, embeddedURL(t))
			clock := &fakeClock{now: time.Now()}
			var ms []*lease.Manager
			for _, id := range []string{"a", "b"} {
				m, err := lease.New(t.Context(), js, lease.Config{Replica: id, TTL: ttl, Campaign: tc.campaign, Now: clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				m.SetTargets(targets)
				ms = append(ms, m)
			}
			// Both start within one round of each other.
			ms[0].Tick(t.Context())
			ms[1].Tick(t.Context())
			clock.Add(tc.campaign)
			for range 2 {
				ms[0].Tick(t.Context())
				ms[1].Tick(t.Context())
			}
			ga, la := gained(t, ms[0])
			gb, lb := gained(t, ms[1])
			if tc.wantFirstTakesAll {
				if ga != len(targets) || la == 0 {
					t.Fatalf("a gained %d and lost %d; want all %d taken, then some handed over (the problem the campaign avoids)", ga, la, len(targets))
				}
				return
			}
			if la != 0 || lb != 0 {
				t.Fatalf("handovers after a start together: a lost %d, b lost %d; want none", la, lb)
			}
			if ga+gb != len(targets) || ga > 3 || gb > 3 {
				t.Fatalf("a took %d, b took %d of %d; want an even share each, taken once", ga, gb, len(targets))
			}
			own := map[watcher.Target]int{}
			for _, m := range ms {
				for _, l := range m.Owned() {
					own[l.Target]++
				}
			}
			for _, tg := range targets {
				if own[tg] != 1 {
					t.Fatalf("target %s held by %d replicas, want 1", tg, own[tg])
				}
			}
		})
	}
}
