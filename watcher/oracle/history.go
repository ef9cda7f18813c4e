package oracle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

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
