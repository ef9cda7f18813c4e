package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// fakeMetadata is a CVM metadata service that lists one CAM role and hands
// out temporary keys the simulator accepts (or, when good is false, keys it
// refuses). An empty role answers the listing with 404: no role bound.
type fakeMetadata struct {
	*httptest.Server
	role  string
	good  bool
	calls atomic.Int64
}

func startFakeMetadata(t *testing.T, sim *cvmsim.Server, role string, good bool) *fakeMetadata {
	t.Helper()
	m := &fakeMetadata{role: role, good: good}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /latest/meta-data/cam/security-credentials/{$}", func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		if m.role == "" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, m.role)
	})
	mux.HandleFunc("GET /latest/meta-data/cam/security-credentials/{role}", func(w http.ResponseWriter, r *http.Request) {
		m.calls.Add(1)
		if r.PathValue("role") != m.role {
			http.NotFound(w, r)
			return
		}
		id, key, token := sim.IssueTemporaryCredentials(time.Hour)
		if !m.good {
			id, key, token = "AKIDnotissued", "not-a-key", "not-a-token"
		}
		json.NewEncoder(w).Encode(map[string]any{"TmpSecretId": id, "TmpSecretKey": key, "Token": token,
			"ExpiredTime": time.Now().Add(time.Hour).Unix(), "Code": "Success"})
	})
	m.Server = httptest.NewServer(mux)
	t.Cleanup(m.Close)
	return m
}

// TestDefaultCredentialChain: an account without a credentials section
// uses cvm.DefaultChain (whose order and rules are tested in watcher/cvm),
// with CVMWATCH_METADATA_ENDPOINT for the metadata service, and the daemon
// scans with what it picks; when it finds nothing, or finds a broken
// source, the daemon refuses to start with an error that names the account
// and says what to set. The sources after the expected one hold keys the
// simulator refuses, so a scan succeeds only through the right one.
func TestDefaultCredentialChain(t *testing.T) {
	h := newHarness(t, 10)
	h.close()
	h.cfg.Accounts[0].Credentials = nil
	home := t.TempDir()
	t.Setenv("HOME", home)
	profile := filepath.Join(home, ".tencentcloud", "credentials")
	if err := os.MkdirAll(filepath.Dir(profile), 0o700); err != nil {
		t.Fatal(err)
	}
	writeProfile := func(id, key string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(profile, []byte("[default]\nsecret_id = "+id+"\nsecret_key = "+key+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(profile, mode); err != nil {
			t.Fatal(err)
		}
	}
	// The names users are told to set, spelled out: a renamed constant
	// must fail here.
	const envID, envKey, envFile = "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_CREDENTIALS_FILE"
	unset := func(keys ...string) {
		for _, k := range keys {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
	unset(envID, envKey, envFile)

	tryScan := func(t *testing.T) error {
		t.Helper()
		h.cfg.DataDir = t.TempDir()
		d, err := openDaemon(t.Context(), h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer d.Close()
		c, err := d.watcher.ScanOnce(t.Context(), h.target)
		if err == nil && !c.Meta.Baselined {
			t.Fatal("a scan without error did not baseline")
		}
		return err
	}
	wantScan := func(t *testing.T) {
		t.Helper()
		if err := tryScan(t); err != nil {
			t.Fatalf("scan: %v", err)
		}
	}
	wantRefusal := func(t *testing.T, parts ...string) {
		t.Helper()
		err := tryScan(t)
		if err == nil {
			t.Fatal("the daemon started")
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not say %q", err, p)
			}
		}
		if strings.Contains(err.Error(), cvmsim.DefaultSecretKey) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}

	t.Run("environment keys scan", func(t *testing.T) {
		writeProfile("AKIDwrong", "wrong-key", 0o600)
		t.Setenv(metadataEndpointEnv, startFakeMetadata(t, h.sim, "cvmwatch-reader", false).URL)
		t.Setenv(envID, cvmsim.DefaultSecretID)
		t.Setenv(envKey, cvmsim.DefaultSecretKey)
		wantScan(t)
	})
	t.Run("CVM role from CVMWATCH_METADATA_ENDPOINT scans", func(t *testing.T) {
		unset(envID, envKey)
		os.Remove(profile)
		meta := startFakeMetadata(t, h.sim, "cvmwatch-reader", true)
		t.Setenv(metadataEndpointEnv, meta.URL)
		wantScan(t)
		if meta.calls.Load() < 2 {
			t.Fatalf("metadata service called %d times, want the listing and the keys", meta.calls.Load())
		}
	})
	t.Run("a broken source is refused naming the account and the source", func(t *testing.T) {
		unset(envID, envKey)
		writeProfile(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey, 0o644)
		wantRefusal(t, "accounts[0] (prod): credentials from the profile file "+profile+": ", "chmod 600")
	})
	t.Run("nothing anywhere is refused saying what to set", func(t *testing.T) {
		unset(envID, envKey)
		os.Remove(profile)
		t.Setenv(metadataEndpointEnv, startFakeMetadata(t, h.sim, "", true).URL)
		wantRefusal(t, "accounts[0] (prod): no credentials section, and neither "+envID+" nor a profile file is there, and no CVM role: ",
			"; set accounts[0].credentials, or "+envID+" and "+envKey+", or the profile file ~/.tencentcloud/credentials, or bind a CAM role to this CVM")
	})
}
