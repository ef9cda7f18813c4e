package cvm_test

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

const (
	testRoleArn = "qcs::cam::uin/100000000001:roleName/cvmwatch-reader"
	baseID      = "AKIDbase0001"
	baseKey     = "BASEKEY-p4k8s2"
)

// startSTSSim starts a simulator that accepts the base keys and serves both
// STS and the CVM API.
func startSTSSim(tb testing.TB, maxDuration time.Duration) *cvmsim.Server {
	tb.Helper()
	return mustStartSim(tb, cvmsim.Options{
		InstancesPerRegion: 150,
		Seed:               7,
		Credentials:        map[string]string{baseID: baseKey},
		STSMaxDuration:     maxDuration,
	})
}

// scanWith scans testRegion of srv with cred through cvm.NewClient and
// cvm.NewScanner.
func scanWith(tb testing.TB, srv *cvmsim.Server, cred common.CredentialIface) (watcher.Scan, error) {
	tb.Helper()
	client, err := cvm.NewClient(cvm.ClientConfig{Region: testRegion, Endpoint: srv.URL(), Credential: cred, RequestTimeout: 2 * time.Second})
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	s, err := cvm.NewScanner(cvm.ScannerConfig{
		Target:  watcher.Target{Account: "cross", Region: testRegion},
		Client:  client,
		Limiter: cvm.NewLimiter(10000, 1),
		Retry:   cvm.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatalf("NewScanner: %v", err)
	}
	return s.Scan(tb.Context())
}

func assumeRoleConfig(srv *cvmsim.Server, log *slog.Logger) cvm.CredentialConfig {
	return cvm.CredentialConfig{
		SecretID:    baseID,
		SecretKey:   baseKey,
		STSEndpoint: srv.URL(),
		HTTPTimeout: 2 * time.Second,
		AssumeRole:  &cvm.AssumeRoleConfig{RoleARN: testRoleArn, SessionName: "cvmwatch-test", ExternalID: "ext-42"},
		Logger:      log,
	}
}

func TestAssumeRoleScan(t *testing.T) {
	t.Parallel()
	srv := startSTSSim(t, 0)
	log, logs := newTestLogger()
	cred := mustNewCredential(t, assumeRoleConfig(srv, log))

	id, key, token := cred.GetCredential()
	if id == baseID || key == baseKey || token == "" || !strings.HasPrefix(id, "AKID") {
		t.Fatalf("GetCredential returned base keys or no token: id %q, token set %v", id, token != "")
	}
	if got, want := cred.Source(), "assume role "+testRoleArn+" (base: explicit keys)"; got != want {
		t.Fatalf("Source = %q, want %q", got, want)
	}
	scan, err := scanWith(t, srv, cred)
	if err != nil {
		t.Fatalf("Scan with assumed-role keys: %v", err)
	}
	if got, want := observed(scan), truth(srv); !scan.Complete || !maps.Equal(got, want) {
		t.Fatalf("scan saw %d instances (complete %v), want %d", len(got), scan.Complete, len(want))
	}
	if got := srv.Stats().Requests[cvmsim.ActionAssumeRole]; got != 1 {
		t.Fatalf("Stats.Requests[AssumeRole] = %d, want 1", got)
	}
	assertNoSecret(t, "log", logs.String(), baseKey, key, token)

	// The temporary keys without their token are refused.
	_, err = scanWith(t, srv, common.NewCredential(id, key))
	if !errors.Is(err, watcher.ErrAuth) || !strings.Contains(err.Error(), "AuthFailure.TokenFailure") {
		t.Fatalf("scan without token: %v, want AuthFailure.TokenFailure", err)
	}
}

func TestAssumeRoleErrors(t *testing.T) {
	t.Parallel()
	srv := startSTSSim(t, 0)
	tests := []struct {
		name   string
		modify func(*cvm.CredentialConfig)
		want   string
		is     error
	}{
		{"wrong base key", func(c *cvm.CredentialConfig) { c.SecretKey = "WRONG-" + baseKey }, "AuthFailure.SignatureFailure", watcher.ErrAuth},
		{"unknown base id", func(c *cvm.CredentialConfig) { c.SecretID = "AKIDnobody" }, "AuthFailure.SecretIdNotFound", watcher.ErrAuth},
		{"malformed role arn", func(c *cvm.CredentialConfig) { c.AssumeRole.RoleARN = "qcs::cam::uin/abc:roleName/x" }, "InvalidParameter.ParamError", cvm.ErrRejected},
		{"sts unreachable", func(c *cvm.CredentialConfig) { c.STSEndpoint = "http://127.0.0.1:1" }, "ClientError.NetworkError", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newTestLogger()
			cfg := assumeRoleConfig(srv, log)
			ar := *cfg.AssumeRole
			cfg.AssumeRole = &ar
			tt.modify(&cfg)
			_, err := cvm.NewCredential(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "assume role "+cfg.AssumeRole.RoleARN+" (base: explicit keys): ") {
				t.Errorf("error %q does not name the source", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			assertNoSecret(t, "error", err.Error(), baseKey)
			assertNoSecret(t, "log", logs.String(), baseKey)
		})
	}

	t.Run("sts hangs", func(t *testing.T) {
		srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultTimeout, Action: cvmsim.ActionAssumeRole, Count: 1})
		cfg := assumeRoleConfig(srv, nil)
		cfg.HTTPTimeout = 300 * time.Millisecond
		start := time.Now()
		_, err := cvm.NewCredential(t.Context(), cfg)
		if err == nil {
			t.Fatal("NewCredential succeeded against a hanging STS")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("NewCredential took %v against a hanging STS, want about HTTPTimeout", took)
		}
	})
}

// TestAssumeRoleRefresh lets the simulator issue 4s keys: the credential
// refreshes them after about half their life, retrying past an injected STS
// failure, and the scanner keeps working with whatever keys are current;
// the first keys stop working once expired.
func TestAssumeRoleRefresh(t *testing.T) {
	t.Parallel()
	srv := startSTSSim(t, 4*time.Second)
	log, logs := newTestLogger()
	cred := mustNewCredential(t, assumeRoleConfig(srv, log))
	id1, key1, token1 := cred.GetCredential()
	srv.AddFault(cvmsim.Fault{Kind: cvmsim.FaultError, Action: cvmsim.ActionAssumeRole, Code: "InternalError", Count: 1})

	if _, err := scanWith(t, srv, cred); err != nil {
		t.Fatalf("scan before refresh: %v", err)
	}
	deadline := time.Now().Add(6 * time.Second)
	for cred.GetSecretId() == id1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	id2, key2, token2 := cred.GetCredential()
	if id2 == id1 || key2 == key1 || token2 == token1 {
		t.Fatal("keys not replaced within 6s of 4s keys")
	}
	if got := srv.Stats().Requests[cvmsim.ActionAssumeRole]; got < 3 {
		t.Errorf("Stats.Requests[AssumeRole] = %d, want at least 3 (first, failed refresh, refresh)", got)
	}
	if !strings.Contains(logs.String(), "credential refresh failed") {
		t.Errorf("the failed refresh was not logged: %s", logs)
	}
	if _, err := scanWith(t, srv, cred); err != nil {
		t.Fatalf("scan after refresh: %v", err)
	}

	// Wait out the first keys: they are refused, the current ones are not.
	old := common.NewTokenCredential(id1, key1, token1)
	deadline = time.Now().Add(6 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if _, err = scanWith(t, srv, old); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !errors.Is(err, watcher.ErrAuth) || !strings.Contains(err.Error(), "AuthFailure.TokenFailure") {
		t.Fatalf("scan with expired keys: %v, want AuthFailure.TokenFailure", err)
	}
	if _, err := scanWith(t, srv, cred); err != nil {
		t.Fatalf("scan with current keys after the first expired: %v", err)
	}
	assertNoSecret(t, "log", logs.String(), baseKey, key1, token1, key2, token2)
}
