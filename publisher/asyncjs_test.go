package publisher_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/publisher"
)

// resolve waits for f's outcome; a future that never resolves fails the
// test after a bound far above any ack's round trip.
func resolve(t *testing.T, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	t.Helper()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-time.After(20 * time.Second):
		t.Fatalf("publish to %s unresolved after 20s", f.Msg().Subject)
		return nil, nil
	}
}

// TestLightAsyncAnswersAsTheLibrary sends the same publishes through the
// library's PublishMsgAsync and through the light path, each to a stream of
// its own, and wants the same outcome for each: stored, duplicate, refused
// by the stream, and no stream at all.
func TestLightAsyncAnswersAsTheLibrary(t *testing.T) {
	t.Parallel()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	library, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	light := publisher.LightAsync(library, 5*time.Second, 100)
	for _, prefix := range []string{"lib", "lit"} {
		if _, err := publisher.EnsureStream(t.Context(), library, publisher.StreamConfig{Name: prefix, Prefix: prefix}); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(subject, id string, header ...string) *nats.Msg {
		m := nats.NewMsg(subject)
		m.Data = []byte(`{"n":1}`)
		m.Header.Set(jetstream.MsgIDHeader, id)
		for i := 0; i+1 < len(header); i += 2 {
			m.Header.Set(header[i], header[i+1])
		}
		return m
	}
	type outcome struct {
		stream    string
		seq       uint64
		duplicate bool
		errCode   jetstream.ErrorCode
		noStream  bool
	}
	steps := []struct {
		name    string
		subject string // after the prefix
		id      string
		header  []string
		want    outcome
	}{
		{"Stored", ".state.a.r.i.X.Y", "id-1", nil, outcome{seq: 1}},
		{"StoredNext", ".state.a.r.j.X.Y", "id-2", nil, outcome{seq: 2}},
		{"Duplicate", ".state.a.r.i.X.Y", "id-1", nil, outcome{seq: 1, duplicate: true}},
		{"RefusedByTheStream", ".state.a.r.k.X.Y", "id-3", []string{jetstream.ExpectedStreamHeader, "ELSEWHERE"}, outcome{errCode: 10060}}, // the stream is not the one expected
		{"NoStream", "", "id-4", nil, outcome{noStream: true}},
	}
	for _, js := range []struct {
		name, prefix string
		ctx          jetstream.JetStream
	}{{"library", "lib", library}, {"light", "lit", light}} {
		for _, step := range steps {
			subject := js.prefix + step.subject
			if step.subject == "" {
				subject = "nostream." + js.prefix
			}
			f, err := js.ctx.PublishMsgAsync(msg(subject, step.id, step.header...))
			if err != nil {
				t.Fatalf("%s %s: PublishMsgAsync: %v", js.name, step.name, err)
			}
			ack, err := resolve(t, f)
			var got outcome
			var apiErr *jetstream.APIError
			switch {
			case err == nil:
				got = outcome{stream: ack.Stream, seq: ack.Sequence, duplicate: ack.Duplicate}
			case errors.As(err, &apiErr):
				got.errCode = apiErr.ErrorCode
			case errors.Is(err, jetstream.ErrNoStreamResponse):
				got.noStream = true
			default:
				t.Fatalf("%s %s: unexpected error %v", js.name, step.name, err)
			}
			want := step.want
			if err == nil {
				want.stream = js.prefix
			}
			if got != want {
				t.Errorf("%s %s: outcome %+v, want %+v", js.name, step.name, got, want)
			}
		}
	}
}

// silentSubscriber subscribes to subject and never replies: a publish to it
// has a listener (no "no responders") and never an ack.
func silentSubscriber(t *testing.T, nc *nats.Conn, subject string) {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestLightAsyncExpiresALostAckAtALaterPublish: a publish whose ack never
// comes fails with ErrAsyncPublishTimeout once ackTimeout has passed, at
// the next publish, and leaves room for others.
func TestLightAsyncExpiresALostAckAtALaterPublish(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	silentSubscriber(t, env.nc, "lost.>")
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const ackTimeout = 5 * time.Second
	js := publisher.LightAsync(env.js, ackTimeout, 2)
	publisher.SetClock(js, clock)

	lost, err := js.PublishMsgAsync(nats.NewMsg("lost.1"))
	if err != nil {
		t.Fatal(err)
	}
	advance(ackTimeout - time.Millisecond)
	stored, err := js.PublishMsgAsync(nats.NewMsg("cvm.state.a.r.i.X.Y"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(t, stored); err != nil {
		t.Fatalf("publish to the stream: %v", err)
	}
	select {
	case err := <-lost.Err():
		t.Fatalf("lost ack failed before ackTimeout: %v", err)
	default:
	}

	advance(2 * time.Millisecond)
	if _, err := js.PublishMsgAsync(nats.NewMsg("lost.2")); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(t, lost); !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
		t.Fatalf("lost ack resolved with %v, want ErrAsyncPublishTimeout", err)
	}
}

// TestLightAsyncLimitsPendingPublishes: at maxPending a publish waits for
// room; it goes on when an ack makes some, and fails with
// ErrTooManyStalledMsgs when none comes within ackTimeout.
func TestLightAsyncLimitsPendingPublishes(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	silentSubscriber(t, env.nc, "lost.>")
	const ackTimeout = 300 * time.Millisecond
	js := publisher.LightAsync(env.js, ackTimeout, 2)
	publisher.SetClock(js, func() time.Time { return time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC) }) // nothing expires

	// Room comes back as acks arrive: many publishes through a limit of 2.
	for i := range 50 {
		f, err := js.PublishMsgAsync(nats.NewMsg("cvm.state.a.r.i.Y.Z"))
		if err != nil {
			t.Fatalf("publish %d through a limit of 2 acked publishes: %v", i, err)
		}
		if i == 49 {
			if _, err := resolve(t, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 2 {
		if _, err := js.PublishMsgAsync(nats.NewMsg("lost.x")); err != nil {
			t.Fatalf("lost publish %d: %v", i, err)
		}
	}
	if _, err := js.PublishMsgAsync(nats.NewMsg("cvm.state.a.r.i.Z.W")); !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		t.Fatalf("publish beyond 2 pending = %v, want ErrTooManyStalledMsgs", err)
	}
}

// TestLightAsyncFailsPendingPublishesOnDisconnect: a publish pending when
// the connection is lost fails with nats.ErrDisconnected (it may still be
// stored: the caller re-sends it with the same id).
func TestLightAsyncFailsPendingPublishesOnDisconnect(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	silentSubscriber(t, env.nc, "lost.>")
	f, err := env.js.PublishMsgAsync(nats.NewMsg("lost.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	env.srv.Shutdown()
	if _, err := resolve(t, f); !errors.Is(err, nats.ErrDisconnected) {
		t.Fatalf("pending publish across a disconnect = %v, want nats.ErrDisconnected", err)
	}
}

// TestLightAsyncResendsAfterNoResponders: a publish that no stream answers
// ("no responders", as while a stream leader is elected) is sent twice more,
// as the library does, before it fails with ErrNoStreamResponse. Counted by
// the server: the messages it received on the publishing connection.
func TestLightAsyncResendsAfterNoResponders(t *testing.T) {
	t.Parallel()
	env := newJSEnv(t, 5*time.Second)
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{env.srv.ClientURL()}})
	library, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	js := publisher.LightAsync(library, 5*time.Second, 10)
	f, err := js.PublishMsgAsync(nats.NewMsg("nostream.x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(t, f); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish no stream answers = %v, want ErrNoStreamResponse", err)
	}
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	connz, err := env.srv.Server().Connz(&server.ConnzOptions{CID: cid})
	if err != nil || len(connz.Conns) != 1 {
		t.Fatalf("connz of client %d: %v, %+v", cid, err, connz)
	}
	if got := connz.Conns[0].InMsgs; got != 3 {
		t.Fatalf("server received %d messages from the publisher, want 3 (the publish and two re-sends)", got)
	}
}
