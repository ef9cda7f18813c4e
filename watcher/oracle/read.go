package oracle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// ReadStream reads every state message (subjects <prefix>.state.>) stored in
// stream, from its first message, with an ordered consumer. It returns once
// it has read every message stored when it started.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, prefix string) ([]Message, error) {
	if prefix == "" {
		prefix = "cvm"
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + ".state.>"},
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	want := int(info.NumPending)
	out := make([]Message, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(min(want-len(out), 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return out, fmt.Errorf("read stream %s: %w", stream, err)
			}
			out = append(out, Message{
				Seq:     md.Sequence.Stream,
				Subject: m.Subject(),
				MsgID:   m.Headers().Get(jetstream.MsgIDHeader),
				Data:    append([]byte(nil), m.Data()...),
			})
		}
		if err := batch.Error(); err != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, err)
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("read stream %s: %w", stream, ctx.Err())
		}
	}
	return out, nil
}

// FetchHistory reads the ground truth from a simulator's admin API
// (GET <simURL>/_sim/history).
func FetchHistory(ctx context.Context, simURL string) ([]cvmsim.Change, error) {
	url := strings.TrimRight(simURL, "/") + "/_sim/history"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("simulator history: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("simulator history: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("simulator history: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var out []cvmsim.Change
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("simulator history: %w", err)
	}
	if out == nil {
		out = []cvmsim.Change{}
	}
	return out, nil
}
