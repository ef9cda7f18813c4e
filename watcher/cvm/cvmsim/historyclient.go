package cvmsim

import (
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

// fetchAdmin GETs a JSON list from the admin API.
func fetchAdmin[T any](ctx context.Context, simURL, path, what string) ([]T, error) {
	url := strings.TrimRight(simURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(b)))
	}
	var out []T
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}
