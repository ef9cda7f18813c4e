package cvm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// TestDefaultChain walks the SDK's order: environment, profile file, CVM
// role. In every case the sources after the expected one are there too
// (keys in the home profile file, a role at the metadata service), so a
// chain that went on when it should have stopped picks the wrong one. A
// source that is there but broken is an error or is chosen, never skipped.
func TestDefaultChain(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	homeProfile := filepath.Join(home, ".tencentcloud", "credentials")
	if err := os.MkdirAll(filepath.Dir(homeProfile), 0o700); err != nil {
		t.Fatal(err)
	}
	meta := startMetadataServer(t, time.Hour)
	opts := cvm.ChainOptions{MetadataEndpoint: meta.URL, AllowInsecureFile: false}

	// set describes the world of one case: env values (a missing name is
	// unset), whether the home profile file exists and with what mode, and
	// whether the metadata service lists a role.
	set := func(t *testing.T, env map[string]string, profileMode os.FileMode, role bool) {
		t.Helper()
		for _, k := range []string{cvm.EnvSecretID, cvm.EnvSecretKey, cvm.EnvCredentialsFile} {
			t.Setenv(k, "") // restored when the test ends
			if v, ok := env[k]; ok {
				t.Setenv(k, v)
			} else {
				os.Unsetenv(k)
			}
		}
		os.Remove(homeProfile)
		if profileMode != 0 {
			writeFile(t, homeProfile, "[default]\nsecret_id = AKIDprofile\nsecret_key = "+secretKeyValue+"\n", profileMode)
		}
		meta.listing.Store("")
		if role {
			meta.listing.Store(testRole)
		}
	}
	both := map[string]string{cvm.EnvSecretID: "AKIDenv", cvm.EnvSecretKey: secretKeyValue}
	other := filepath.Join(t.TempDir(), "elsewhere")

	for _, tc := range []struct {
		name        string
		env         map[string]string
		profileMode os.FileMode
		role        bool
		opts        *cvm.ChainOptions // nil: opts
		want        cvm.CredentialConfig
		wantFrom    string
		wantErr     []string // parts of the error; nil: none
	}{
		{name: "environment first", env: both, profileMode: 0o600, role: true,
			want: cvm.CredentialConfig{SecretID: "AKIDenv", SecretKey: secretKeyValue}, wantFrom: "the environment"},
		{name: "secret id alone is an error, not a fall-through", profileMode: 0o600, role: true,
			env:     map[string]string{cvm.EnvSecretID: "AKIDenv"},
			wantErr: []string{cvm.EnvSecretID, cvm.EnvSecretKey, "must both be set and not empty"}},
		{name: "secret key alone is an error", profileMode: 0o600, role: true,
			env:     map[string]string{cvm.EnvSecretKey: secretKeyValue},
			wantErr: []string{cvm.EnvSecretID, cvm.EnvSecretKey, "must both be set"}},
		{name: "empty secret id is an error", profileMode: 0o600, role: true,
			env:     map[string]string{cvm.EnvSecretID: "", cvm.EnvSecretKey: secretKeyValue},
			wantErr: []string{"must both be set"}},
		{name: "credentials file variable before the home profile file", profileMode: 0o600, role: true,
			env:  map[string]string{cvm.EnvCredentialsFile: other},
			want: cvm.CredentialConfig{ProfileFile: other, Profile: cvm.DefaultProfile}, wantFrom: "the profile file " + other},
		{name: "credentials file variable set but empty is an error", profileMode: 0o600, role: true,
			env:     map[string]string{cvm.EnvCredentialsFile: ""},
			wantErr: []string{cvm.EnvCredentialsFile, "set but empty"}},
		{name: "home profile file second", profileMode: 0o600, role: true,
			want: cvm.CredentialConfig{ProfileFile: homeProfile, Profile: cvm.DefaultProfile}, wantFrom: "the profile file " + homeProfile},
		{name: "home profile file carries allow insecure", profileMode: 0o600, role: true,
			opts:     &cvm.ChainOptions{MetadataEndpoint: meta.URL, AllowInsecureFile: true},
			want:     cvm.CredentialConfig{ProfileFile: homeProfile, Profile: cvm.DefaultProfile, AllowInsecureFile: true},
			wantFrom: "the profile file " + homeProfile},
		{name: "home profile file readable by others is still chosen", profileMode: 0o644, role: true,
			want: cvm.CredentialConfig{ProfileFile: homeProfile, Profile: cvm.DefaultProfile}, wantFrom: "the profile file " + homeProfile},
		{name: "CVM role third", role: true,
			want: cvm.CredentialConfig{CVMRole: testRole, MetadataEndpoint: meta.URL}, wantFrom: "the CVM role " + testRole},
		{name: "nothing anywhere is an error",
			wantErr: []string{"neither " + cvm.EnvSecretID + " nor a profile file is there, and no CVM role: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(t, tc.env, tc.profileMode, tc.role)
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			cfg, from, err := cvm.DefaultChain(t.Context(), o)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("DefaultChain = %+v from %q, want an error", cfg, from)
				}
				for _, p := range tc.wantErr {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("error %q does not say %q", err, p)
					}
				}
				assertNoSecret(t, "error", err.Error(), secretKeyValue)
				return
			}
			if err != nil {
				t.Fatalf("DefaultChain: %v", err)
			}
			if cfg != tc.want {
				t.Fatalf("DefaultChain = %+v, want %+v", cfg, tc.want)
			}
			if from != tc.wantFrom {
				t.Fatalf("from = %q, want %q", from, tc.wantFrom)
			}
		})
	}

	t.Run("no role is ErrNoCVMRole", func(t *testing.T) {
		set(t, nil, 0, false)
		_, _, err := cvm.DefaultChain(t.Context(), opts)
		if !errors.Is(err, cvm.ErrNoCVMRole) {
			t.Fatalf("err = %v, want ErrNoCVMRole", err)
		}
	})
	t.Run("a chosen profile file that is too open is refused by NewCredential", func(t *testing.T) {
		set(t, nil, 0o644, true)
		cfg, _, err := cvm.DefaultChain(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cvm.NewCredential(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("NewCredential of a 0644 profile file: %v, want a refusal", err)
		}
	})
	t.Run("the CVM role's config gives temporary keys", func(t *testing.T) {
		set(t, nil, 0, true)
		cfg, _, err := cvm.DefaultChain(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if c := mustNewCredential(t, cfg); c.GetToken() == "" || !strings.HasPrefix(c.GetSecretId(), "AKIDtmp-") {
			t.Fatalf("credential from %s: id %q, token set %v", c.Source(), c.GetSecretId(), c.GetToken() != "")
		}
	})
}
