package cvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"

	"github.com/cvmwatch/cvmwatch/watcher"
)

// CloudAudit LookUpEvents, called through the SDK's common client (the
// SDK's cloudaudit module does not resolve with the pinned common module):
// signed, size-capped, guarded and retried exactly like the CVM calls.
const (
	ActionLookUpEvents = "LookUpEvents"
	AuditService       = "cloudaudit"
	AuditVersion       = "2019-03-19"
	// DefaultAuditEndpoint is the SDK's host for CloudAudit; QuotaKey of
	// LookUpEvents takes it when no endpoint is configured.
	DefaultAuditEndpoint = "cloudaudit.tencentcloudapi.com"
)

// The time range a lookup asks about, around the scan that saw the
// operation: the request was made before the scan ended, at most
// auditLookback before (the previous enrichment of an instance is at most
// an enrich.refresh old), and auditSkew covers clocks that disagree.
const (
	auditLookback = 6 * time.Hour
	auditSkew     = 15 * time.Minute
	auditMax      = 10 // events per answer: a request id has one
)

// AttributorConfig wires an Attributor. Credential and Limiter are
// required.
type AttributorConfig struct {
	Target watcher.Target
	// Endpoint overrides DefaultAuditEndpoint, as ClientConfig.Endpoint
	// does for CVM.
	Endpoint   string
	Credential common.CredentialIface
	// Limiter paces LookUpEvents for the credential and endpoint (its own
	// 20 req/s quota; share it between targets that spend the same one).
	Limiter *Limiter
	Retry   RetryPolicy
	// RequestTimeout and MaxResponseBytes as in ClientConfig.
	RequestTimeout   time.Duration
	MaxResponseBytes int64
	Logger           *slog.Logger
	Observer         Observer
}

// Attributor finds who made a request with CloudAudit LookUpEvents by
// RequestId. It implements watcher.Attributor and is safe for concurrent
// use.
type Attributor struct {
	target watcher.Target
	client *common.Client
	call   caller
	log    *slog.Logger
}

var _ watcher.Attributor = (*Attributor)(nil)

// NewAttributor returns an Attributor for cfg.Target (the requests name
// its region).
func NewAttributor(cfg AttributorConfig) (*Attributor, error) {
	if cfg.Credential == nil || cfg.Limiter == nil {
		return nil, errors.New("cvm attributor: Credential and Limiter are required")
	}
	cc := ClientConfig{Region: cfg.Target.Region, Endpoint: cfg.Endpoint, Credential: cfg.Credential,
		RequestTimeout: cfg.RequestTimeout, MaxResponseBytes: cfg.MaxResponseBytes}.withDefaults()
	cpf, err := safeProfile(cc.Endpoint, cc.RequestTimeout)
	if err != nil {
		return nil, err
	}
	client := common.NewCommonClient(cc.Credential, cc.Region, cpf)
	client.WithHttpTransport(newTransport(cc))
	client.WithDebug(false)
	a := &Attributor{target: cfg.Target, client: client, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.call = caller{limiter: cfg.Limiter, retry: cfg.Retry.withDefaults(), obs: cfg.Observer,
		account: cfg.Target.Account, action: ActionLookUpEvents}
	if a.call.obs == nil {
		a.call.obs = nopObserver{}
	}
	return a, nil
}

// auditEvent is the part of a LookUpEvents event the actor comes from
// (cloudaudit/v20190319.Event); every field may be null.
type auditEvent struct {
	Username        *string
	EventName       *string
	RequestID       *string
	SourceIPAddress *string
}

// Actor asks LookUpEvents for the record of requestID in
// [around-6h, around+15m], with the retries and limiter of every call. The
// first event of that request with a Username is the actor; none (no
// event yet, or events without a Username) is found=false, no error. An
// answer that is not LookUpEvents' shape is retried, then an error.
func (a *Attributor) Actor(ctx context.Context, requestID string, around time.Time) (watcher.Actor, bool, error) {
	var (
		st    callStats
		actor watcher.Actor
		found bool
	)
	err := a.call.do(ctx, &st, func() error {
		req := tchttp.NewCommonRequest(AuditService, AuditVersion, ActionLookUpEvents)
		params := map[string]any{
			"StartTime": around.Add(-auditLookback).Unix(), "EndTime": around.Add(auditSkew).Unix(),
			"LookupAttributes": []map[string]string{{"AttributeKey": "RequestId", "AttributeValue": requestID}},
			"MaxResults":       auditMax,
		}
		if err := req.SetActionParameters(params); err != nil {
			return err
		}
		req.SetContext(ctx)
		resp := tchttp.NewCommonResponse()
		if err := sendGuarded(a.client, req, resp); err != nil {
			return err
		}
		var body struct {
			Response *struct {
				Events []*auditEvent
			}
		}
		if err := json.Unmarshal(resp.GetBody(), &body); err != nil || body.Response == nil {
			return fmt.Errorf("%w: no Response object", ErrMalformed)
		}
		actor, found = pickActor(body.Response.Events, requestID)
		return nil
	})
	if err != nil {
		return watcher.Actor{}, false, fmt.Errorf("look up request %s: %w", watcher.Quote(requestID), err)
	}
	return actor, found, nil
}

// pickActor returns the actor of the first event of requestID (an event
// whose RequestID is null is taken as the one asked for) with a Username.
// Its values are the API's, bounded by the watcher.
func pickActor(events []*auditEvent, requestID string) (watcher.Actor, bool) {
	for _, e := range events {
		if e == nil || e.Username == nil || *e.Username == "" {
			continue
		}
		if e.RequestID != nil && !strings.EqualFold(*e.RequestID, requestID) {
			continue
		}
		return watcher.Actor{Username: *e.Username, SourceIP: str(e.SourceIPAddress), EventName: str(e.EventName)}.Bound(), true
	}
	return watcher.Actor{}, false
}
