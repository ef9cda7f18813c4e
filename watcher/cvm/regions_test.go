package cvm_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
	"github.com/cvmwatch/cvmwatch/watcher/cvm/cvmsim"
)

func TestRegionListerThroughTheSDK(t *testing.T) {
	srv := mustStartSim(t, cvmsim.Options{Regions: []string{"ap-guangzhou", "ap-shanghai"}})
	l, err := cvm.NewRegionLister(cvm.ClientConfig{Endpoint: srv.URL(), Credential: common.NewCredential(cvmsim.DefaultSecretID, cvmsim.DefaultSecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []string{"ap-guangzhou", "ap-shanghai"}; !slices.Equal(got, want) {
		t.Fatalf("regions = %v, want %v", got, want)
	}
	srv.SetAdvertisedRegions([]string{"ap-shanghai", "ap-beijing", "ap-guangzhou"})
	if got, err = l.List(t.Context()); err != nil || !slices.Equal(got, []string{"ap-beijing", "ap-guangzhou", "ap-shanghai"}) {
		t.Fatalf("regions after a change = %v (%v)", got, err)
	}
	srv.SetAdvertisedRegions([]string{"ap-guangzhou", "bad.region"})
	if _, err := l.List(t.Context()); err == nil {
		t.Fatal("a region name that is not a subject token was accepted")
	}

	bad, err := cvm.NewRegionLister(cvm.ClientConfig{Endpoint: srv.URL(), Credential: common.NewCredential(cvmsim.DefaultSecretID, "wrong")})
	if err != nil {
		t.Fatalf("NewRegionLister: %v", err)
	}
	if _, err := bad.List(t.Context()); !errors.Is(err, watcher.ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
}

// TestRegionListerSurvivesANullBody feeds the JSON `null` that makes the SDK
// dereference nil: an error, never a panic.
func TestRegionListerSurvivesANullBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("null"))
	}))
	defer srv.Close()
	l, err := cvm.NewRegionLister(cvm.ClientConfig{Endpoint: srv.URL, Credential: common.NewCredential("id", "key")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.List(t.Context()); err == nil {
		t.Fatal("a null body listed regions")
	}
}
