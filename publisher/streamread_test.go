package publisher_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/publishertest"
	"github.com/cvmwatch/cvmwatch/watcher"
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
	if m := msgs[0]; m.Time.IsZero() || m.Time.After(time.Now()) {
		t.Fatalf("message 0 stored at %v", m.Time)
	}
}

func TestStreamContentsPrefixes(t *testing.T) {
	for _, tc := range []struct {
		subjects []string
		want     string
	}{
		{[]string{"cvmbig.>"}, "cvmbig"},
		{[]string{"cvm.state.>", "cvm.attribution.>", "other.x"}, "cvm other"},
		{[]string{">", "*.state.>", "$KV.b.>"}, ""},
		{nil, ""},
	} {
		got := strings.Join(publisher.StreamContents{Subjects: tc.subjects}.Prefixes(), " ")
		if got != tc.want {
			t.Errorf("Prefixes(%q) = %q, want %q", tc.subjects, got, tc.want)
		}
	}
}

// TestDescribeStreamCountsWhatIsUnderThePrefix: the stream's subjects, its
// messages, and those under the prefix asked for; a missing stream is
// ErrNoStream.
func TestDescribeStreamCountsWhatIsUnderThePrefix(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	if _, err := publisher.DescribeStream(ctx, js, "NOSUCH", ""); !errors.Is(err, publisher.ErrNoStream) {
		t.Fatalf("DescribeStream of a missing stream: %v, want ErrNoStream", err)
	}
	if _, err := publisher.ReadAll(ctx, js, "NOSUCH", ">"); !errors.Is(err, publisher.ErrNoStream) {
		t.Fatalf("ReadAll of a missing stream: %v, want ErrNoStream", err)
	}
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Prefix: "big"}); err != nil {
		t.Fatal(err)
	}
	p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{Prefix: "big"})
	if err != nil {
		t.Fatal(err)
	}
	events := publishertest.Events([]watcher.Target{prod}, 3, 7)
	if acked, err := p.Publish(ctx, events); acked != len(events) || err != nil {
		t.Fatalf("Publish = %d, %v", acked, err)
	}
	if err := p.PublishScan(ctx, watcher.ScanSummary{Target: prod, Started: time.Now(), Complete: true}); err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string]uint64{"big": uint64(len(events)), "cvm": 0} {
		c, err := publisher.DescribeStream(ctx, js, publisher.DefaultStreamName, prefix)
		if err != nil {
			t.Fatal(err)
		}
		// The summary is in the scans stream, not among the events.
		if c.Messages != uint64(len(events)) || c.UnderPrefix != want || strings.Join(c.Subjects, " ") != "big.state.> big.attribution.> big.operation.>" {
			t.Fatalf("DescribeStream(prefix %s) = %+v, want %d messages, %d under the prefix, the event subjects under big", prefix, c, len(events), want)
		}
	}
	one := events[0].InstanceID
	msgs, err := publisher.ReadAll(ctx, js, publisher.DefaultStreamName, publisher.InstanceFilter("big", one))
	if err != nil {
		t.Fatal(err)
	}
	mine := 0
	for _, ev := range events {
		if ev.InstanceID == one {
			mine++
		}
	}
	if len(msgs) != mine || mine == 0 {
		t.Fatalf("ReadAll of %s = %d messages, want %d", one, len(msgs), mine)
	}
}

// TestReadSinceStartsAtItsTime: ReadSince returns the messages stored at or
// after start, in order, and none before; a zero start reads them all.
func TestReadSinceStartsAtItsTime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := MustStartEmbedded(t, publisher.EmbeddedConfig{})
	nc := MustConnect(t, publisher.ConnConfig{URLs: []string{e.ClientURL()}})
	js := MustJetStream(t, nc, 5*time.Second)
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	p, err := publisher.NewJetStream(js, publisher.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	events := publishertest.Events([]watcher.Target{prod}, 5, 40)
	if acked, err := p.Publish(ctx, events[:30]); acked != 30 || err != nil {
		t.Fatalf("Publish = %d, %v", acked, err)
	}
	start := time.Now() // after the first 30 were stored
	if acked, err := p.Publish(ctx, events[30:]); acked != len(events)-30 || err != nil {
		t.Fatalf("Publish = %d, %v", acked, err)
	}
	msgs, err := publisher.ReadSince(ctx, js, publisher.DefaultStreamName, publisher.StateFilter(""), start)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(msgs), len(events)-30; got != want {
		t.Fatalf("ReadSince = %d messages, want %d", got, want)
	}
	for i, m := range msgs {
		if got, want := m.MsgID, events[30+i].ID; got != want {
			t.Fatalf("message %d is %s, want %s", i, got, want)
		}
	}
	all, err := publisher.ReadSince(ctx, js, publisher.DefaultStreamName, publisher.StateFilter(""), time.Time{})
	if err != nil || len(all) != len(events) {
		t.Fatalf("ReadSince(zero) = %d messages, %v; want %d", len(all), err, len(events))
	}
}
