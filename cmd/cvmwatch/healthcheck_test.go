package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"not ready","reason":"prod/ap-guangzhou: no complete scan yet"}`)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/healthz", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only when the client gives up
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(mux)
	closed.Close()

	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		out, err   string
		notInError string
	}{
		{name: "2xx is healthy", args: []string{"--url", srv.URL + "/healthz"}, code: 0, out: `healthy: 200 OK {"status":"ok"}`},
		{name: "503 is unhealthy with the reason", args: []string{"--url", srv.URL + "/readyz"}, code: 1,
			err: `503 Service Unavailable: {"status":"not ready","reason":"prod/ap-guangzhou: no complete scan yet"}`},
		{name: "a redirect is not followed", args: []string{"--url", srv.URL + "/moved"}, code: 1, err: "302 Found"},
		{name: "no answer in time", args: []string{"--url", srv.URL + "/slow", "--timeout", "100ms"}, code: 1, err: "did not answer within 100ms"},
		{name: "connection refused", args: []string{"--url", closed.URL + "/healthz"}, code: 1, err: "connection refused"},
		{name: "not an http url", args: []string{"--url", "ftp://127.0.0.1/healthz"}, code: 2, err: "want an http:// or https:// URL"},
		{name: "credentials in the url", args: []string{"--url", "http://admin:hunter2@127.0.0.1:1/healthz"}, code: 2,
			err: "credentials in the URL", notInError: "hunter2"},
		{name: "zero timeout", args: []string{"--url", "http://127.0.0.1:1/healthz", "--timeout", "0s"}, code: 2, err: "--timeout"},
		{name: "an argument", args: []string{"http://127.0.0.1:9090/healthz"}, code: 2, err: "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if tc.out != "" && !strings.Contains(stdout, tc.out) {
				t.Errorf("stdout = %q, want %q", stdout, tc.out)
			}
			if tc.err != "" && !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr = %q, want %q", stderr, tc.err)
			}
			if tc.notInError != "" && strings.Contains(stdout+stderr, tc.notInError) {
				t.Errorf("output shows %q", tc.notInError)
			}
		})
	}
}
