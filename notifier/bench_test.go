package notifier

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

var titleCount = regexp.MustCompile(`^\*\*(\d+) instances STOPPED in prod / ap-guangzhou\*\*`)

// TestBurstToOneWeComRoom: 10,000 events at once to one WeCom robot become
// at most 20 messages in any minute, none throttled, and every event is
// counted in some message's title. It runs on synctest's clock: minutes of
// rate limiting take no real time.
func TestBurstToOneWeComRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10000
		// group_max 10 (merges of up to 100): about a hundred messages,
		// five times what a minute may hold.
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}, GroupMax: 10}}, map[string]notifiertest.Kind{"room": notifiertest.WeCom}, nil)
		start := time.Now()
		for i := range n {
			r.submit(t, ev(fmt.Sprintf("ins-%05d", i), 2, watcher.StateRunning, watcher.StateStopped, start))
		}
		for r.done.Load() < n {
			time.Sleep(time.Second)
		}
		room := r.rooms["room"]
		msgs := room.Messages()
		covered := 0
		for _, m := range msgs {
			sub := titleCount.FindStringSubmatch(m.Text)
			if sub == nil {
				t.Fatalf("message without the summary title:\n%s", m.Text)
			}
			k, _ := strconv.Atoi(sub[1])
			covered += k
		}
		if len(msgs) <= 40 {
			t.Fatalf("only %d messages: the rate limit was never tested", len(msgs))
		}
		if covered != n {
			t.Fatalf("messages cover %d events, want %d", covered, n)
		}
		if got := room.MaxInWindow(time.Minute); got > 20 {
			t.Fatalf("%d messages within a minute, more than WeCom's 20", got)
		}
		if got := room.Throttled(); got != 0 {
			t.Fatalf("room throttled %d requests", got)
		}
		t.Logf("%d events -> %d messages over %v (fake clock), at most %d in a minute",
			n, len(msgs), time.Since(start).Round(time.Second), room.MaxInWindow(time.Minute))
	})
}

// unlimited is a platform's wire format without its rate limit, to measure
// the notifier's own cost.
type unlimited struct{ Platform }

func (u unlimited) Limits() Limits {
	l := u.Platform.Limits()
	l.Every = 0
	return l
}

// BenchmarkPipelinePerEvent is the notifier's CPU per event: routing,
// grouping (group_max 100), rendering WeCom markdown and posting to an
// in-process fake room, with no rate limit.
func BenchmarkPipelinePerEvent(b *testing.B) {
	room := notifiertest.NewRoom(notifiertest.WeCom, notifiertest.Options{PerMinute: 1 << 30})
	senders := map[string]*Sender{"room": NewSender("room", unlimited{&WeCom{URL: "http://room.invalid/x"}}, SenderOptions{Client: room.Client()})}
	router, err := NewRouter([]Route{{Name: "all", Sinks: []string{"room"}, Match: Match{To: []string{"STOPPED"}}}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPipeline(PipelineConfig{Router: router, Senders: senders})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	now := time.Now()
	var done atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e := ev(fmt.Sprintf("ins-%08d", i), 2, watcher.StateRunning, watcher.StateStopped, now)
		e.Instance = &watcher.Instance{Name: fmt.Sprintf("web-%d", i), Tags: []watcher.Tag{{Key: "env", Value: "prod"}}}
		if err := p.Submit(ctx, e, now, func() { done.Add(1) }); err != nil {
			b.Fatal(err)
		}
	}
	p.Flush()
	for done.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(room.Messages()))/float64(b.N), "msgs/event")
}
