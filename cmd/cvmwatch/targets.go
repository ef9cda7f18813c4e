package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// account is one configured account, wired: its credential, the key of the
// quota it spends, and (for regions: all) its region lister.
type account struct {
	index int
	cfg   AccountConfig
	cred  common.CredentialIface
	// quotaKey identifies the credential for rate limiting: Tencent counts
	// requests per API, access endpoint and credential, so accounts that
	// share a SecretId and endpoint share one limiter.
	quotaKey string
	regions  *cvm.RegionLister
}

func (d *daemon) wireAccount(ctx context.Context, i int, a AccountConfig) (*account, error) {
	cred, err := accountCredential(ctx, i, a, d.cfg.allowInsecure, d.log)
	if err != nil {
		return nil, err
	}
	acct := &account{index: i, cfg: a, cred: cred, quotaKey: "id:" + cred.GetSecretId()}
	if c, ok := cred.(cvm.Credential); ok {
		d.closers = append(d.closers, c.Close)
		if c.GetToken() != "" {
			// Temporary keys (CVM role, AssumeRole) change at every
			// refresh; the quota belongs to the role they come from.
			acct.quotaKey = "source:" + c.Source()
		}
	}
	if a.Regions.All() {
		endpoint := a.RegionEndpoint
		if endpoint == "" {
			endpoint = a.Endpoint // the simulator serves both APIs
		}
		if acct.regions, err = cvm.NewRegionLister(cvm.ClientConfig{Endpoint: endpoint, Credential: cred}); err != nil {
			return nil, fmt.Errorf("accounts[%d] (%s): %w", i, a.Name, err)
		}
	}
	return acct, nil
}

// targetSource builds the scanner of one region of an account.
func (d *daemon) targetSource(a *account, region string) (watcher.TargetSource, error) {
	client, err := cvm.NewClient(cvm.ClientConfig{
		Region: region, Endpoint: a.cfg.Endpoint, Credential: a.cred, MaxConnsPerHost: d.cfg.Poll.PageConcurrency,
	})
	if err != nil {
		return watcher.TargetSource{}, fmt.Errorf("accounts[%d] region %s: %w", a.index, region, err)
	}
	endpoint := a.cfg.Endpoint
	if endpoint == "" {
		endpoint = "cvm.tencentcloudapi.com" // the SDK's default: one access endpoint for every region
	}
	t := watcher.Target{Account: a.cfg.Name, Region: region}
	s, err := cvm.NewScanner(cvm.ScannerConfig{
		Target: t, Client: client,
		Limiter:         d.limiters.Get(a.quotaKey + "|" + cvm.ActionDescribeInstancesStatus + "|" + endpoint),
		PageConcurrency: d.cfg.Poll.PageConcurrency, Logger: d.log, Observer: d.metrics,
	})
	if err != nil {
		return watcher.TargetSource{}, err
	}
	return watcher.TargetSource{Target: t, Source: s, Interval: a.cfg.Interval.D()}, nil
}

// refreshRegions re-resolves `regions: all` every poll.region_refresh and
// starts watching regions that appeared. Regions that disappear keep their
// target (and its snapshot); nothing is deleted on the word of a listing.
func (d *daemon) refreshRegions(ctx context.Context) {
	var all []*account
	for _, a := range d.accounts {
		if a.regions != nil {
			all = append(all, a)
		}
	}
	if len(all) == 0 {
		return
	}
	tick := time.NewTicker(d.cfg.Poll.RegionRefresh.D())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, a := range all {
			d.addNewRegions(ctx, a)
		}
	}
}

// addNewRegions lists an account's regions once and adds the new ones.
func (d *daemon) addNewRegions(ctx context.Context, a *account) {
	regions, err := a.regions.List(ctx)
	if err != nil {
		d.log.Warn("regions: all: listing failed; keeping the known regions", "account", a.cfg.Name, "err", err)
		return
	}
	known := d.watcher.Targets()
	for _, r := range regions {
		if slices.Contains(known, watcher.Target{Account: a.cfg.Name, Region: r}) {
			continue
		}
		ts, err := d.targetSource(a, r)
		if err == nil {
			err = d.watcher.AddTarget(ts)
		}
		if err != nil {
			d.log.Error("regions: all: cannot watch a new region", "account", a.cfg.Name, "region", r, "err", err)
			continue
		}
		d.log.Info("regions: all: watching a new region", "account", a.cfg.Name, "region", r)
	}
}
