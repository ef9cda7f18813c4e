package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

// TestRegionsAllAndAssumeRole wires an account that resolves `regions: all`
// from the Region API and scans with temporary keys from STS AssumeRole,
// both served by the simulator, then picks up a region that appears.
func TestRegionsAllAndAssumeRole(t *testing.T) {
	h := newHarness(t, 30)
	h.close()
	h.sim.SetAdvertisedRegions([]string{"ap-guangzhou"})
	h.cfg.Accounts = []AccountConfig{{
		Name: "cross", Regions: RegionList{"all"}, Endpoint: h.sim.URL(),
		Credentials: &CredentialsConfig{
			SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey,
			AssumeRole:  &AssumeRoleConfig{RoleARN: "qcs::cam::uin/100000000001:roleName/cvmwatch-reader"},
			STSEndpoint: h.sim.URL(),
		},
	}}
	h.open()
	if got, want := h.d.watcher.Targets(), []watcher.Target{{Account: "cross", Region: "ap-guangzhou"}}; !slices.Equal(got, want) {
		t.Fatalf("targets = %v, want %v", got, want)
	}
	if n := h.sim.Stats().Requests[cvmsim.ActionAssumeRole]; n != 1 {
		t.Fatalf("AssumeRole calls = %d, want 1", n)
	}
	tg := watcher.Target{Account: "cross", Region: "ap-guangzhou"}
	c, err := h.d.watcher.ScanOnce(t.Context(), tg)
	if err != nil || !c.Meta.Baselined {
		t.Fatalf("scan with assumed-role keys: baselined=%v err=%v", c.Meta.Baselined, err)
	}

	// A region appears: the next resolution adds it without a restart.
	h.sim.SetAdvertisedRegions([]string{"ap-guangzhou", "ap-shanghai"})
	if err := h.d.accounts[0].regions.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	sh := watcher.Target{Account: "cross", Region: "ap-shanghai"}
	if !slices.Contains(h.d.watcher.Targets(), sh) {
		t.Fatalf("targets after the region appeared = %v", h.d.watcher.Targets())
	}
	if _, err := h.d.watcher.ScanOnce(t.Context(), sh); err != nil {
		t.Fatalf("scan of the new region: %v", err)
	}
	// A region that disappears from the listing keeps its target.
	h.sim.SetAdvertisedRegions([]string{"ap-shanghai"})
	if err := h.d.accounts[0].regions.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(h.d.watcher.Targets()); got != 2 {
		t.Fatalf("targets = %d after a region vanished from the listing, want 2", got)
	}
}

func TestProfileFileCredentialsAndTheirPermissions(t *testing.T) {
	h := newHarness(t, 10)
	h.close()
	dir := t.TempDir()
	profile := filepath.Join(dir, "credentials")
	text := "[watch]\nsecret_id = " + cvmsim.DefaultSecretID + "\nsecret_key = " + cvmsim.DefaultSecretKey + "\n"
	if err := os.WriteFile(profile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(profile, 0o644)
	h.cfg.Accounts[0].Credentials = &CredentialsConfig{ProfileFile: profile, Profile: "watch"}
	_, err := openDaemon(t.Context(), h.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), profile) {
		t.Fatalf("a readable credentials file: %v, want a refusal naming the file", err)
	}
	if strings.Contains(err.Error(), cvmsim.DefaultSecretKey) {
		t.Fatalf("the refusal shows the key: %v", err)
	}
	os.Chmod(profile, 0o600)
	h.open()
	if _, err := h.d.watcher.ScanOnce(t.Context(), h.target); err != nil {
		t.Fatalf("scan with profile-file keys: %v", err)
	}
}

// TestAccountsSharingACredentialShareALimiter: Tencent counts requests per
// API, endpoint and credential, so two accounts configured with the same
// SecretId share one limiter (their targets together stay within the quota),
// and an account with another SecretId gets its own.
func TestAccountsSharingACredentialShareALimiter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 10)
	h.close()
	same := &CredentialsConfig{SecretID: cvmsim.DefaultSecretID, SecretKey: cvmsim.DefaultSecretKey}
	h.cfg.Accounts = []AccountConfig{
		{Name: "a", Regions: []string{"ap-guangzhou"}, Endpoint: h.sim.URL(), Credentials: same},
		{Name: "b", Regions: []string{"ap-guangzhou"}, Endpoint: h.sim.URL(), Credentials: same},
		{Name: "c", Regions: []string{"ap-guangzhou"}, Endpoint: h.sim.URL(),
			Credentials: &CredentialsConfig{SecretID: "AKIDanotherkey", SecretKey: cvmsim.DefaultSecretKey}},
	}
	h.open()
	a, b, c := h.d.accounts[0], h.d.accounts[1], h.d.accounts[2]
	if a.quotaKey != b.quotaKey {
		t.Fatalf("accounts with one credential have quota keys %q and %q", a.quotaKey, b.quotaKey)
	}
	if a.quotaKey == c.quotaKey {
		t.Fatalf("accounts with different credentials share quota key %q", a.quotaKey)
	}
	if strings.Contains(a.quotaKey, cvmsim.DefaultSecretKey) {
		t.Fatal("a quota key holds the secret key")
	}
	if h.d.limiters.Get(a.quotaKey) != h.d.limiters.Get(b.quotaKey) {
		t.Fatal("one quota key, two limiters")
	}
}
