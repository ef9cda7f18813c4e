package notifier

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cvmwatch/cvmwatch/notifier/notifiertest"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// ev is a test event of instance id in prod/ap-guangzhou, observed at t.
func ev(id string, seq uint64, from, to watcher.State, t time.Time) Event {
	tgt := watcher.Target{Account: "prod", Region: "ap-guangzhou"}
	return Event{Event: watcher.Event{ID: watcher.EventID(tgt, id, seq, from, to), Target: tgt, InstanceID: id,
		From: from, To: to, Sequence: seq, ObservedAt: t}}
}

// rig is a pipeline to one room per sink, run in the test's bubble.
type rig struct {
	p     *Pipeline
	rooms map[string]*notifiertest.Room
	done  atomic.Int64
}

func newRig(t *testing.T, routes []Route, kinds map[string]notifiertest.Kind, sent SentStore) *rig {
	t.Helper()
	r := &rig{rooms: map[string]*notifiertest.Room{}}
	senders := map[string]*Sender{}
	for name, kind := range kinds {
		room := notifiertest.NewRoom(kind, notifiertest.Options{})
		r.rooms[name] = room
		senders[name] = NewSender(name, platformOf(kind, "http://room.invalid", ""), SenderOptions{Client: room.Client()})
	}
	router, err := NewRouter(routes)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	r.p, err = NewPipeline(PipelineConfig{Router: router, Senders: senders, Sent: sent})
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go r.p.Run(ctx)
	return r
}

func (r *rig) submit(t *testing.T, events ...Event) {
	t.Helper()
	for _, e := range events {
		if err := r.p.Submit(t.Context(), e, time.Now(), func() { r.done.Add(1) }); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
}

func TestPipelineGroupsARoutesEventsIntoOneMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}}}, map[string]notifiertest.Kind{"room": notifiertest.WeCom}, nil)
		now := time.Now()
		for i := range 12 {
			r.submit(t, ev(fmt.Sprintf("ins-%04d", i), 2, watcher.StateRunning, watcher.StateStopped, now))
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(DefaultGroupWait)
		synctest.Wait()
		msgs := r.rooms["room"].Messages()
		if got, want := len(msgs), 1; got != want {
			t.Fatalf("room has %d messages, want %d", got, want)
		}
		if !strings.Contains(msgs[0].Text, "12 instances STOPPED in prod / ap-guangzhou") {
			t.Fatalf("message lacks the summary line:\n%s", msgs[0].Text)
		}
		if got, want := r.done.Load(), int64(12); got != want {
			t.Fatalf("%d events done, want %d", got, want)
		}
	})
}

func TestPipelineShowsARebootOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}}}, map[string]notifiertest.Kind{"room": notifiertest.Slack}, nil)
		now := time.Now()
		r.submit(t, ev("ins-a", 3, watcher.StateRunning, watcher.StateRebooting, now),
			ev("ins-a", 4, watcher.StateRebooting, watcher.StateRunning, now.Add(time.Second)))
		time.Sleep(DefaultGroupWait + time.Second)
		synctest.Wait()
		msgs := r.rooms["room"].Messages()
		if len(msgs) != 1 {
			t.Fatalf("room has %d messages, want 1", len(msgs))
		}
		if got := strings.Count(msgs[0].Text, "ins-a"); got != 1 {
			t.Fatalf("instance shown %d times, want once:\n%s", got, msgs[0].Text)
		}
		if !strings.Contains(msgs[0].Text, "1 instance rebooted") {
			t.Fatalf("not shown as rebooted:\n%s", msgs[0].Text)
		}
	})
}

func TestPipelineRoutesInOrderWithContinueAndDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quiet, err := ParseWindow("22:00-08:00", "", "Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		routes := []Route{
			{Name: "quiet", Drop: true, Match: Match{Active: quiet, Tags: []TagRule{{Key: "env", Value: "dev"}}}},
			{Name: "stops", Sinks: []string{"ops"}, Continue: true, Match: Match{To: []string{"STOPPED"}}},
			{Name: "prod", Sinks: []string{"prod"}, Match: Match{Tags: []TagRule{{Key: "env", Value: "prod"}}}},
			{Name: "rest", Sinks: []string{"rest"}},
		}
		r := newRig(t, routes, map[string]notifiertest.Kind{"ops": notifiertest.Slack, "prod": notifiertest.WeCom, "rest": notifiertest.DingTalk}, nil)
		tagged := func(e Event, env string) Event {
			e.Instance = &watcher.Instance{Name: "n-" + e.InstanceID, Tags: []watcher.Tag{{Key: "env", Value: env}}}
			return e
		}
		night := time.Date(2026, 11, 26, 23, 0, 0, 0, time.FixedZone("CST", 8*3600))
		day := night.Add(12 * time.Hour)
		r.submit(t,
			tagged(ev("ins-devnight", 2, "RUNNING", "STOPPED", night), "dev"), // dropped by quiet hours
			tagged(ev("ins-devday", 2, "RUNNING", "STOPPED", day), "dev"),     // stops, then rest
			tagged(ev("ins-prod", 2, "STOPPED", "RUNNING", day), "prod"),      // prod
			ev("ins-bare", 2, "STOPPED", "RUNNING", day),                      // rest: no tags
		)
		time.Sleep(DefaultGroupWait + time.Second)
		synctest.Wait()
		want := map[string][]string{"ops": {"ins-devday"}, "prod": {"ins-prod"}, "rest": {"ins-devday", "ins-bare"}}
		for sink, ids := range want {
			msgs := r.rooms[sink].Messages()
			if len(msgs) != 1 {
				t.Fatalf("%s has %d messages, want 1", sink, len(msgs))
			}
			for _, id := range ids {
				if !strings.Contains(msgs[0].Text, id) {
					t.Fatalf("%s lacks %s:\n%s", sink, id, msgs[0].Text)
				}
			}
			if strings.Contains(msgs[0].Text, "ins-devnight") {
				t.Fatalf("%s shows an event of quiet hours:\n%s", sink, msgs[0].Text)
			}
		}
		if got, want := r.done.Load(), int64(4); got != want {
			t.Fatalf("%d events done, want %d (a dropped one is done too)", got, want)
		}
	})
}

func TestPipelineSummarisesAStaleBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}, GroupMax: 10}}, map[string]notifiertest.Kind{"room": notifiertest.WeCom}, nil)
		old := time.Now().Add(-3 * time.Hour)
		for i := range 230 {
			to := watcher.StateStopped
			if i%3 == 0 {
				to = watcher.StateRunning
			}
			r.submit(t, ev(fmt.Sprintf("ins-%04d", i), 2, "PENDING", to, old.Add(time.Duration(i)*time.Second)))
		}
		time.Sleep(DefaultGroupWait + time.Second)
		synctest.Wait()
		msgs := r.rooms["room"].Messages()
		if got, want := len(msgs), 1; got != want {
			t.Fatalf("room has %d messages, want one summary", got)
		}
		for _, s := range []string{"230 transitions", "STOPPED</font>: 153", "RUNNING</font>: 77"} {
			if !strings.Contains(msgs[0].Text, s) {
				t.Fatalf("summary lacks %q:\n%s", s, msgs[0].Text)
			}
		}
		if got := r.done.Load(); got != 230 {
			t.Fatalf("%d events done, want 230", got)
		}
	})
}

func TestPipelineSkipsEventsAlreadySent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent := &MemSent{}
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}}}, map[string]notifiertest.Kind{"room": notifiertest.Slack}, sent)
		e := ev("ins-a", 2, "RUNNING", "STOPPED", time.Now())
		r.submit(t, e)
		time.Sleep(DefaultGroupWait + time.Second)
		synctest.Wait()
		r.submit(t, e) // redelivered after the ack was lost
		time.Sleep(DefaultGroupWait + time.Second)
		synctest.Wait()
		if got := len(r.rooms["room"].Messages()); got != 1 {
			t.Fatalf("room has %d messages, want 1", got)
		}
		if got := r.done.Load(); got != 2 {
			t.Fatalf("%d deliveries done, want 2", got)
		}
	})
}

// TestPipelineCoversEveryEventBeyondTheSize: a group larger than a message
// shows what fits and "... and N more", within the platform's size.
func TestPipelineCoversEveryEventBeyondTheSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, []Route{{Name: "all", Sinks: []string{"room"}, GroupMax: 500}}, map[string]notifiertest.Kind{"room": notifiertest.WeCom}, nil)
		now := time.Now()
		for i := range 500 {
			e := ev(fmt.Sprintf("ins-%04d", i), 2, "RUNNING", "STOPPED", now)
			e.Instance = &watcher.Instance{Name: fmt.Sprintf("服务器-%04d", i)}
			r.submit(t, e)
		}
		synctest.Wait()
		msgs := r.rooms["room"].Messages()
		if len(msgs) != 1 {
			t.Fatalf("room has %d messages, want 1", len(msgs))
		}
		text := msgs[0].Text
		if len(text) > 4096 {
			t.Fatalf("message is %d bytes", len(text))
		}
		shown := strings.Count(text, "\n- ")
		if !strings.HasSuffix(text, fmt.Sprintf("... and %d more", 500-shown)) {
			t.Fatalf("message does not end with the count of the rest (%d shown):\n%s", shown, text)
		}
	})
}

// cancelAfter is a transport that hands a request to the room and then ends
// the pipeline's context: a stop that comes just after the platform
// accepted a message.
type cancelAfter struct {
	room   http.Handler
	cancel context.CancelFunc
}

func (c cancelAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	c.room.ServeHTTP(rec, req)
	c.cancel()
	return rec.Result(), nil
}

// TestPipelineRecordsAMessageAcceptedAsItStops: a message the platform
// accepted is recorded as sent even when the pipeline is stopped at that
// moment, so the next run does not tell it again.
func TestPipelineRecordsAMessageAcceptedAsItStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := notifiertest.NewRoom(notifiertest.Slack, notifiertest.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s := NewSender("room", &Slack{URL: "http://room.invalid/x"}, SenderOptions{Client: &http.Client{Transport: cancelAfter{room, cancel}}})
		router, err := NewRouter([]Route{{Name: "all", Sinks: []string{"room"}}})
		if err != nil {
			t.Fatal(err)
		}
		sent := &MemSent{}
		p, err := NewPipeline(PipelineConfig{Router: router, Senders: map[string]*Sender{"room": s}, Sent: sent})
		if err != nil {
			t.Fatal(err)
		}
		ran := make(chan struct{})
		go func() { defer close(ran); p.Run(ctx) }()
		e := ev("ins-a", 2, "RUNNING", "STOPPED", time.Now())
		if err := p.Submit(t.Context(), e, time.Now(), func() {}); err != nil {
			t.Fatal(err)
		}
		<-ran
		if got := len(room.Messages()); got != 1 {
			t.Fatalf("room has %d messages, want 1: the test proves nothing", got)
		}
		told, err := sent.Sent(t.Context(), SentKey("all", "room", e.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !told {
			t.Fatal("an accepted message is not recorded as sent: the next run tells it again")
		}
	})
}
