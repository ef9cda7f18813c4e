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
	var out []Change
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("simulator history: %w", err)
	}
	if out == nil {
		out = []Change{}
	}
	return out, nil
}
