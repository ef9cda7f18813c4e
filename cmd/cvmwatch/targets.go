package main

import (
	"context"
	"fmt"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/cvmwatch/cvmwatch/watcher"
	"github.com/cvmwatch/cvmwatch/watcher/cvm"
)

// account is one configured account, wired: its credential, the key of the
// quota its scans spend, and (for regions: all) the watcher of its regions.
type account struct {
	index int
	cfg   AccountConfig
	cred  common.CredentialIface
	// quotaKey is cvm.QuotaKey of DescribeInstancesStatus through the
	// account's endpoint: accounts with equal keys share one limiter.
	quotaKey string
	regions  *cvm.RegionWatcher
}

func (d *daemon) wireAccount(ctx context.Context, i int, a AccountConfig) (*account, error) {
	cred, err := accountCredential(ctx, i, a, d.cfg.allowInsecure, d.log)
	if err != nil {
		return nil, err
	}
	if c, ok := cred.(cvm.Credential); ok {
		d.closers = append(d.closers, c.Close)
	}
	acct := &account{index: i, cfg: a, cred: cred,
		quotaKey: cvm.QuotaKey(cred, cvm.ActionDescribeInstancesStatus, a.Endpoint)}
	if a.Regions.All() {
		endpoint := a.RegionEndpoint
		if endpoint == "" {
			endpoint = a.Endpoint // the simulator serves both APIs
		}
		lister, err := cvm.NewRegionLister(cvm.ClientConfig{Endpoint: endpoint, Credential: cred})
		if err != nil {
			return nil, fmt.Errorf("accounts[%d] (%s): %w", i, a.Name, err)
		}
		acct.regions = &cvm.RegionWatcher{
			Lister: lister, Interval: d.cfg.Poll.RegionRefresh.D(),
			OnNew:  func(_ context.Context, region string) error { return d.addTarget(acct, region) },
			Logger: d.log.With("account", a.Name),
		}
	}
	return acct, nil
}

// targetSource builds the scanner of one region of an account.
func (d *daemon) targetSource(a *account, region string) (watcher.TargetSource, error) {
	// Mixed scans read pages through both APIs at once: twice the pages
	// in flight.
	mixed := d.cfg.Enrich.On() && d.cfg.Poll.DescribeShare > 0
	conns := d.cfg.Poll.PageConcurrency
	if mixed {
		conns *= 2
	}
	client, err := cvm.NewClient(cvm.ClientConfig{
		Region: region, Endpoint: a.cfg.Endpoint, Credential: a.cred, MaxConnsPerHost: conns,
	})
	if err != nil {
		return watcher.TargetSource{}, fmt.Errorf("accounts[%d] region %s: %w", a.index, region, err)
	}
	t := watcher.Target{Account: a.cfg.Name, Region: region}
	describeKey := cvm.QuotaKey(a.cred, cvm.ActionDescribeInstances, a.cfg.Endpoint)
	var describe *cvm.Limiter
	if mixed {
		// The scans' share of the enricher's DescribeInstances quota, one
		// for every target of that quota.
		describe = d.enrichLimiters.Share(describeKey, d.cfg.Poll.DescribeShare)
	}
	s, err := cvm.NewScanner(cvm.ScannerConfig{
		Target: t, Client: client, Limiter: d.limiters.Get(a.quotaKey), Describe: describe,
		PageConcurrency: d.cfg.Poll.PageConcurrency, Logger: d.log, Observer: d.metrics,
	})
	if err != nil {
		return watcher.TargetSource{}, err
	}
	ts := watcher.TargetSource{Target: t, Source: s, Interval: a.cfg.Interval.D()}
	if d.cfg.Poll.Hot {
		// The hot set's lookups: the same API and quota, on the share of it
		// that every target of the quota has in common.
		ts.Hot, err = cvm.NewScanner(cvm.ScannerConfig{
			Target: t, Client: client, Limiter: d.limiters.Share(a.quotaKey, d.cfg.Poll.HotShare),
			PageConcurrency: d.cfg.Poll.PageConcurrency, Logger: d.log, Observer: d.metrics,
		})
		if err != nil {
			return watcher.TargetSource{}, err
		}
	}
	if d.cfg.Enrich.On() {
		e, err := cvm.NewEnricher(cvm.EnricherConfig{
			Target: t, Client: client, Limiter: d.enrichLimiters.Get(describeKey), RefreshLimiter: d.refreshLimiters.Get(describeKey),
			Logger: d.log, Observer: d.metrics,
		})
		if err != nil {
			return watcher.TargetSource{}, err
		}
		ts.Enricher = e
		if d.cfg.Enrich.Actor {
			if ts.Attributor, err = d.attributor(a, t); err != nil {
				return watcher.TargetSource{}, err
			}
		}
	}
	return ts, nil
}

// addTarget starts watching a region of an account, also while the daemon
// runs; with ha, it becomes one of the targets shared by lease.
func (d *daemon) addTarget(a *account, region string) error {
	ts, err := d.targetSource(a, region)
	if err != nil {
		return err
	}
	if d.ha != nil {
		return d.ha.add(ts)
	}
	return d.watcher.AddTarget(ts)
}

// refreshRegions follows `regions: all` every poll.region_refresh until ctx
// is done: regions that appear are watched at once; regions that disappear
// keep their target (see cvm.RegionWatcher).
func (d *daemon) refreshRegions(ctx context.Context) {
	for _, a := range d.accounts {
		if a.regions != nil {
			go func() {
				if err := a.regions.Run(ctx); err != nil {
					d.log.Error("regions: all: not refreshed", "account", a.cfg.Name, "err", err)
				}
			}()
		}
	}
}

// attributor builds the CloudAudit lookup of one target, on the limiter of
// its (credential, LookUpEvents, endpoint) quota.
func (d *daemon) attributor(a *account, t watcher.Target) (*cvm.Attributor, error) {
	endpoint := a.cfg.AuditEndpoint
	if endpoint == "" {
		endpoint = a.cfg.Endpoint // the simulator serves LookUpEvents too
	}
	keyEndpoint := endpoint
	if keyEndpoint == "" {
		keyEndpoint = cvm.DefaultAuditEndpoint
	}
	return cvm.NewAttributor(cvm.AttributorConfig{
		Target: t, Endpoint: endpoint, Credential: a.cred,
		Limiter: d.actorLimiters.Get(cvm.QuotaKey(a.cred, cvm.ActionLookUpEvents, keyEndpoint)),
		Logger:  d.log, Observer: d.metrics,
	})
}
