package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyzSaysWhyTheNotifierIsNotRunning(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "targets": []any{}})
	})
	r := &notifyRunner{notReady: "consumer not set up: stream not found"}
	h := r.wrapReady(inner)
	ask := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return rec.Code, body
	}
	code, body := ask()
	if code != http.StatusServiceUnavailable || body["status"] != "not ready" {
		t.Fatalf("readyz = %d %v, want 503 not ready", code, body["status"])
	}
	if got := body["notify"].(map[string]any)["reason"]; got != "consumer not set up: stream not found" {
		t.Fatalf("notify reason = %v", got)
	}
	r.setNotReady("")
	if code, body = ask(); code != http.StatusOK || body["notify"].(map[string]any)["ready"] != true {
		t.Fatalf("readyz = %d %v, want 200 with notify ready", code, body)
	}
}
