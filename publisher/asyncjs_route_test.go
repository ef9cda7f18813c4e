package publisher

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// routeRig is a light context without a connection: publishes are enqueued
// as PublishMsgAsync does, and replies handed to handleAck as the
// subscription does.
type routeRig struct {
	t   *testing.T
	a   *asyncJS
	now time.Time
}

func newRouteRig(t *testing.T, maxPending int) *routeRig {
	r := &routeRig{t: t, now: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}
	r.a = &asyncJS{prefix: "_INBOX.rig.", ackTimeout: time.Second, maxPending: maxPending}
	r.a.now = func() time.Time { return r.now }
	return r
}

func (r *routeRig) publish() (uint64, *asyncFuture) {
	f := &asyncFuture{a: r.a, msg: nats.NewMsg("cvm.state.a.r.i.X.Y")}
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	id, err := r.a.admitLocked(f)
	if err != nil {
		r.t.Fatal(err)
	}
	return id, f
}

// publishN publishes n times and returns the futures, numbered from 0.
func (r *routeRig) publishN(n int) []*asyncFuture {
	fs := make([]*asyncFuture, n)
	for i := range fs {
		_, fs[i] = r.publish()
	}
	return fs
}

func (r *routeRig) reply(id uint64, body string) {
	r.a.handleAck(&nats.Msg{Subject: r.a.prefix + strconv.FormatUint(id, 10), Data: []byte(body)})
}

func ackOf(id uint64) string { return `{"stream":"S","seq":` + strconv.FormatUint(id+1, 10) + `}` }

// outcomeOf returns f's outcome, failing when it is unresolved.
func (r *routeRig) outcomeOf(f *asyncFuture) (*jetstream.PubAck, error) {
	r.t.Helper()
	done, ack, err := f.outcome()
	if !done {
		r.t.Fatalf("publish %s unresolved", f.reply)
	}
	return ack, err
}

func (r *routeRig) wantEmpty(base uint64) {
	r.t.Helper()
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	if len(r.a.pending) != 0 || r.a.unresolved != 0 || r.a.base != base {
		r.t.Fatalf("pending %d, unresolved %d, base %d; want 0, 0, %d", len(r.a.pending), r.a.unresolved, r.a.base, base)
	}
}

func (f *asyncFuture) outcome() (bool, *jetstream.PubAck, error) {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	return f.done, f.ack, f.err
}

func TestLightAsyncRoutesEachReplyToItsPublish(t *testing.T) {
	t.Run("OutOfOrder", func(t *testing.T) {
		r := newRouteRig(t, 10)
		fs := r.publishN(4)
		for _, id := range []uint64{2, 0, 3, 1} {
			r.reply(id, ackOf(id))
		}
		for id, f := range fs {
			ack, err := r.outcomeOf(f)
			if err != nil || ack.Sequence != uint64(id)+1 {
				t.Fatalf("publish %d = %+v, %v; want seq %d", id, ack, err, id+1)
			}
		}
		r.wantEmpty(4)
	})

	t.Run("LateReplyAfterExpiryIsIgnored", func(t *testing.T) {
		r := newRouteRig(t, 10)
		_, lost := r.publish()
		r.now = r.now.Add(2 * time.Second)
		id, f := r.publish() // expires the first on the way
		if _, err := r.outcomeOf(lost); !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			t.Fatalf("overdue publish = %v, want ErrAsyncPublishTimeout", err)
		}
		r.reply(0, ackOf(0)) // too late
		if _, err := r.outcomeOf(lost); !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
			t.Fatalf("overdue publish after its late ack = %v, want it unchanged", err)
		}
		r.reply(id, ackOf(id))
		if ack, err := r.outcomeOf(f); err != nil || ack.Sequence != id+1 {
			t.Fatalf("publish %d = %+v, %v", id, ack, err)
		}
		r.wantEmpty(2)
	})

	t.Run("NumbersGoOnAfterADisconnect", func(t *testing.T) {
		r := newRouteRig(t, 10)
		_, old := r.publish()
		r.a.mu.Lock()
		r.a.failAllLocked(nats.ErrDisconnected)
		r.a.mu.Unlock()
		if _, err := r.outcomeOf(old); !errors.Is(err, nats.ErrDisconnected) {
			t.Fatalf("publish pending at the disconnect = %v, want nats.ErrDisconnected", err)
		}
		id, f := r.publish()
		if id != 1 {
			t.Fatalf("first publish after the disconnect is number %d, want 1 (numbers are never reused)", id)
		}
		r.reply(0, ackOf(0)) // the old publish's ack, after the reconnect
		r.reply(id, ackOf(id))
		if ack, err := r.outcomeOf(f); err != nil || ack.Sequence != 2 {
			t.Fatalf("publish after the disconnect = %+v, %v", ack, err)
		}
		r.wantEmpty(2)
	})

	t.Run("RepliesThatAreNoAck", func(t *testing.T) {
		r := newRouteRig(t, 10)
		fs := r.publishN(3)
		r.a.handleAck(&nats.Msg{Subject: r.a.prefix + "x", Data: []byte(ackOf(0))}) // not a number: ignored
		r.a.handleAck(&nats.Msg{Subject: "_INBOX", Data: []byte(ackOf(0))})         // not ours: ignored
		r.reply(0, `{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}`)
		r.reply(1, `{"stream":""}`)
		r.reply(2, `not json`)
		var apiErr *jetstream.APIError
		if _, err := r.outcomeOf(fs[0]); !errors.As(err, &apiErr) || apiErr.ErrorCode != 10060 {
			t.Fatalf("refused publish = %v, want the stream's APIError 10060", err)
		}
		for _, f := range fs[1:] {
			if _, err := r.outcomeOf(f); !errors.Is(err, jetstream.ErrInvalidJSAck) {
				t.Fatalf("publish %s = %v, want ErrInvalidJSAck", f.reply, err)
			}
		}
		r.wantEmpty(3)
	})

	t.Run("TheLimitCountsUnresolvedPublishes", func(t *testing.T) {
		r := newRouteRig(t, 2)
		r.publish() // its ack never comes
		id, _ := r.publish()
		r.reply(id, ackOf(id)) // resolved behind an unresolved one
		r.a.mu.Lock()
		err := r.a.waitRoomLocked()
		r.a.mu.Unlock()
		if err != nil {
			t.Fatalf("room with 1 of 2 unresolved: %v", err)
		}
	})
}
