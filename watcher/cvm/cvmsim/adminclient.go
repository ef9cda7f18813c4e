package cvmsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// FetchHistory reads the ground truth from the admin API of a simulator
// running elsewhere (GET <simURL>/_sim/history), as Server.History returns it
// in process. An empty history is an empty slice, never nil.
func FetchHistory(ctx context.Context, simURL string) ([]Change, error) {
	return fetchAdmin[Change](ctx, simURL, "/_sim/history", "simulator history")
}

// FetchOperations reads the operations a simulator running elsewhere
// recorded (GET <simURL>/_sim/operations), as Server.Operations returns
// them in process: the truth about who made each request. None is an
// empty slice, never nil.
func FetchOperations(ctx context.Context, simURL string) ([]Operation, error) {
	return fetchAdmin[Operation](ctx, simURL, "/_sim/operations", "simulator operations")
}

// FetchStats reads the request counters of a simulator running elsewhere
// (GET <simURL>/_sim/stats), as Server.Stats returns them in process.
func FetchStats(ctx context.Context, simURL string) (Stats, error) {
	var st Stats
	err := adminCall(ctx, http.MethodGet, simURL, "/_sim/stats", "simulator stats", nil, &st)
	return st, err
}

// SetChurnAt sets the churn rate (lifecycle operations started per second;
// 0 pauses it) of a simulator running elsewhere (POST <simURL>/_sim/churn),
// as Server.SetChurn does in process.
func SetChurnAt(ctx context.Context, simURL string, rate float64) error {
	body, err := json.Marshal(churnBody{Rate: rate})
	if err != nil {
		return fmt.Errorf("set simulator churn: %w", err)
	}
	return adminCall(ctx, http.MethodPost, simURL, "/_sim/churn", "set simulator churn", body, nil)
}

// fetchAdmin GETs a JSON list from the admin API; none is an empty slice.
func fetchAdmin[T any](ctx context.Context, simURL, path, what string) ([]T, error) {
	var out []T
	if err := adminCall(ctx, http.MethodGet, simURL, path, what, nil, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// adminCall sends body (none if nil) to the admin API and decodes the
// answer into out (not read if nil). Errors start with what.
func adminCall(ctx context.Context, method, simURL, path, what string, body []byte, out any) error {
	url := strings.TrimRight(simURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
