package publisher_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/oracle"
)

// TestReadStreamReadsEveryStateMessage: ReadStream returns the stream's
// state messages, all of them, in stream order, and nothing else (not the
// scan summaries stored beside them), in the form the oracle judges.
func TestReadStreamReadsEveryStateMessage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}

	msgs, err := publisher.ReadStream(ctx, js, publisher.DefaultStreamName, "")
	if err != nil || len(msgs) != 0 {
		t.Fatalf("ReadStream of an empty stream = %d messages, %v; want 0, nil", len(msgs), err)
	}

	p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// More than one fetch batch (1,000), with a scan summary in between.
	events := publishertest.Events([]watcher.Target{prod}, 50, 2500)
	if acked, err := p.Publish(ctx, events[:1200]); acked != 1200 || err != nil {
		t.Fatalf("Publish = %d, %v", acked, err)
	}
	if err := p.PublishScan(ctx, watcher.ScanSummary{Target: prod, Started: time.Now(), Complete: true}); err != nil {
		t.Fatal(err)
	}
	if acked, err := p.Publish(ctx, events[1200:]); acked != len(events)-1200 || err != nil {
		t.Fatalf("Publish = %d, %v", acked, err)
	}

	msgs, err = publisher.ReadStream(ctx, js, publisher.DefaultStreamName, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), len(events); got != want {
		t.Fatalf("ReadStream = %d messages, want %d", got, want)
	}
	var last uint64
	for i, m := range msgs {
		ev := events[i]
		subject, err := ev.Subject(publisher.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		body, err := watcher.MarshalCloudEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != subject || m.MsgID != ev.ID || !bytes.Equal(m.Data, body) {
			t.Fatalf("message %d = %s %s, want event %s on %s", i, m.Subject, m.MsgID, ev.ID, subject)
		}
		if m.Seq <= last {
			t.Fatalf("message %d has stream sequence %d after %d", i, m.Seq, last)
		}
		last = m.Seq
	}
	if r := oracle.Check(msgs, nil, oracle.Options{}); !r.OK() || r.Events != len(events) {
		t.Fatalf("oracle on the stream read: %s", r)
	}
}
