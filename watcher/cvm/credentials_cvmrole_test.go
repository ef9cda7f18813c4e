package cvm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

const testRole = "cvmwatch-role"

// metadataServer is a fake CVM metadata service that hands out a new key set
// (AKIDtmp-N, key-N, token-N) on every call, valid for lifetime.
type metadataServer struct {
	*httptest.Server
	calls    atomic.Int64
	lifetime atomic.Int64 // nanoseconds
	code     atomic.Value // string
	listing  atomic.Value // string: the answer to the role listing; "" is a 404
}

func startMetadataServer(tb testing.TB, lifetime time.Duration) *metadataServer {
	tb.Helper()
	m := &metadataServer{}
	m.lifetime.Store(int64(lifetime))
	m.code.Store("Success")
	m.listing.Store("")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /latest/meta-data/cam/security-credentials/{$}", func(w http.ResponseWriter, r *http.Request) {
		if l := m.listing.Load().(string); l != "" {
			fmt.Fprint(w, l)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /latest/meta-data/cam/security-credentials/{role}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("role") {
		case testRole:
		case "broken":
			http.Error(w, "oops", http.StatusInternalServerError)
			return
		default:
			http.NotFound(w, r)
			return
		}
		n := m.calls.Add(1)
		exp := time.Now().Add(time.Duration(m.lifetime.Load()))
		_ = json.NewEncoder(w).Encode(map[string]any{
			"TmpSecretId":  fmt.Sprintf("AKIDtmp-%d", n),
			"TmpSecretKey": fmt.Sprintf("%s-key-%d", secretKeyValue, n),
			"Token":        fmt.Sprintf("token-%d", n),
			"ExpiredTime":  exp.Unix(),
			"Expiration":   exp.UTC().Format(time.RFC3339),
			"Code":         m.code.Load(),
		})
	})
	m.Server = httptest.NewServer(mux)
	tb.Cleanup(m.Close)
	return m
}

// suffix returns what follows the last "-" of s.
func suffix(s string) string { return s[strings.LastIndex(s, "-")+1:] }

func TestCVMRole(t *testing.T) {
	t.Parallel()
	meta := startMetadataServer(t, time.Hour)
	log, logs := newTestLogger()
	c := mustNewCredential(t, cvm.CredentialConfig{CVMRole: testRole, MetadataEndpoint: meta.URL + "/", Logger: log})
	id, key, token := c.GetCredential()
	if id != "AKIDtmp-1" || key != secretKeyValue+"-key-1" || token != "token-1" {
		t.Fatalf("GetCredential = %q, %q, %q", id, key, token)
	}
	if got, want := c.Source(), "cvm role "+testRole; got != want {
		t.Fatalf("Source = %q, want %q", got, want)
	}
	assertNoSecret(t, "log", logs.String(), secretKeyValue, "token-1")
	assertNoSecret(t, "%+v", fmt.Sprintf("%+v %#v", c, c), secretKeyValue, "token-1")
}

func TestCVMRoleErrors(t *testing.T) {
	t.Parallel()
	meta := startMetadataServer(t, time.Hour)

	// Nothing listens on port 1: connecting is refused.
	const refused = "http://127.0.0.1:1"

	// A black hole accepts connections and never answers.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		hole.Close()
		conns.Wait()
	})
	conns.Add(1)
	go func() {
		defer conns.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	tests := []struct {
		name, role, endpoint, want string
	}{
		{"role not bound", "other-role", meta.URL, `no CVM role "other-role" bound to this instance (metadata service at ` + meta.URL + ` answered 404 Not Found)`},
		{"connection refused", testRole, refused, "cvm role " + testRole + ": metadata service unreachable at " + refused},
		{"no answer", testRole, "http://" + hole.Addr().String(), "metadata service unreachable at http://" + hole.Addr().String()},
		{"server error", "broken", meta.URL, "metadata service at " + meta.URL + " answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := cvm.NewCredential(t.Context(), cvm.CredentialConfig{
				CVMRole: tt.role, MetadataEndpoint: tt.endpoint, HTTPTimeout: 300 * time.Millisecond,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("NewCredential took %v, want a fast failure", took)
			}
		})
	}

	t.Run("code not success", func(t *testing.T) {
		m := startMetadataServer(t, time.Hour)
		m.code.Store("Failed")
		_, err := cvm.NewCredential(t.Context(), cvm.CredentialConfig{CVMRole: testRole, MetadataEndpoint: m.URL})
		if err == nil || !strings.Contains(err.Error(), `answered Code "Failed"`) {
			t.Fatalf("error = %v", err)
		}
		assertNoSecret(t, "error", err.Error(), secretKeyValue, "token-1")
	})
	t.Run("expired on arrival", func(t *testing.T) {
		m := startMetadataServer(t, -time.Minute)
		_, err := cvm.NewCredential(t.Context(), cvm.CredentialConfig{CVMRole: testRole, MetadataEndpoint: m.URL})
		if err == nil || !strings.Contains(err.Error(), "expired on arrival") {
			t.Fatalf("error = %v", err)
		}
	})
}

// TestCVMRoleRefresh uses short real lifetimes: 3s keys are refreshed after
// half their life. Readers never see an id of one set with the key or token
// of another.
func TestCVMRoleRefresh(t *testing.T) {
	t.Parallel()
	meta := startMetadataServer(t, 3*time.Second)
	log, logs := newTestLogger()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := cvm.NewCredential(ctx, cvm.CredentialConfig{CVMRole: testRole, MetadataEndpoint: meta.URL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var torn atomic.Int64
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, key, token := c.GetCredential()
				if suffix(id) != suffix(key) || suffix(id) != suffix(token) {
					torn.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.GetSecretId() == "AKIDtmp-1" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	if got := c.GetSecretId(); got == "AKIDtmp-1" {
		t.Fatalf("keys not refreshed within 5s of 3s keys")
	}
	if n := torn.Load(); n != 0 {
		t.Fatalf("%d reads returned an id, key and token of different sets", n)
	}
	if !strings.Contains(logs.String(), "temporary credentials refreshed") {
		t.Errorf("no refresh logged: %s", logs)
	}
	assertNoSecret(t, "log", logs.String(), secretKeyValue, "token-1", "token-2")

	// Cancelling the context stops the refresher; Close still works.
	cancel()
	n := meta.calls.Load()
	time.Sleep(1500 * time.Millisecond)
	if got := meta.calls.Load(); got != n {
		t.Fatalf("metadata called %d more times after the context ended", got-n)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestDiscoverCVMRole: the role bound to the instance is read from the
// metadata listing, as the SDK's default chain does; no role, a broken
// listing and an unreachable service are distinct, clear errors.
func TestDiscoverCVMRole(t *testing.T) {
	t.Parallel()
	meta := startMetadataServer(t, time.Hour)
	for _, tc := range []struct {
		listing, want, err string
		noRole             bool
	}{
		{listing: testRole, want: testRole},
		{listing: testRole + "\n", want: testRole},
		{listing: "", err: "no CAM role", noRole: true},
		{listing: "   \n", err: "listed none", noRole: true},
		{listing: "role-a\nrole-b", err: "not one CAM role name"},
		{listing: "<html>gateway</html>", err: "not one CAM role name"},
		// A misdirected endpoint answering with keys: never quoted.
		{listing: `{"TmpSecretId":"AKIDx","TmpSecretKey":"` + secretKeyValue + `"}`, err: "not one CAM role name"},
	} {
		meta.listing.Store(tc.listing)
		role, err := cvm.DiscoverCVMRole(t.Context(), meta.URL, 5*time.Second)
		if tc.err == "" {
			if err != nil || role != tc.want {
				t.Errorf("listing %q: DiscoverCVMRole = %q, %v; want %q", tc.listing, role, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, cvm.ErrNoCVMRole) != tc.noRole {
			t.Errorf("listing %q: DiscoverCVMRole = %q, %v; want an error with %q (ErrNoCVMRole: %v)", tc.listing, role, err, tc.err, tc.noRole)
		}
		if err != nil {
			assertNoSecret(t, "DiscoverCVMRole error", err.Error(), secretKeyValue[:6])
		}
	}

	// The discovered role's keys are then fetched as for a configured one.
	meta.listing.Store(testRole)
	role, err := cvm.DiscoverCVMRole(t.Context(), meta.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := mustNewCredential(t, cvm.CredentialConfig{CVMRole: role, MetadataEndpoint: meta.URL})
	if id, _, token := c.GetCredential(); id == "" || token == "" {
		t.Fatalf("keys of the discovered role: id %q, token %q", id, token)
	}

	// Nobody listening (nothing listens on port 1: connecting is refused):
	// an error naming the endpoint, not ErrNoCVMRole.
	const dead = "http://127.0.0.1:1"
	if _, err := cvm.DiscoverCVMRole(t.Context(), dead, 5*time.Second); err == nil || errors.Is(err, cvm.ErrNoCVMRole) || !strings.Contains(err.Error(), "unreachable at "+dead) {
		t.Fatalf("unreachable metadata service: %v", err)
	}
	if _, err := cvm.DiscoverCVMRole(t.Context(), "ftp://x", time.Second); err == nil || !strings.Contains(err.Error(), "metadata endpoint") {
		t.Fatalf("bad endpoint: %v", err)
	}
}
