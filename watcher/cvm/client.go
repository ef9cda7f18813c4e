package cvm

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	cvmapi "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/cvm/v20170312"
)

// Defaults for ClientConfig.
const (
	// DefaultEndpoint is the CVM API's access endpoint, the SDK's default:
	// one host for every region (the region travels in a header).
	DefaultEndpoint         = "cvm.tencentcloudapi.com"
	DefaultRequestTimeout   = 15 * time.Second
	DefaultMaxResponseBytes = 8 << 20
)

// ClientConfig says how to reach the CVM API of one region.
type ClientConfig struct {
	// Region is the API region, e.g. "ap-guangzhou".
	Region string
	// Endpoint overrides the API host. "host:port" or "https://host[:port]"
	// means HTTPS; "http://host:port" means plain HTTP (the simulator). Empty
	// means DefaultEndpoint over HTTPS.
	Endpoint string
	// Credential signs every request. It is never logged.
	Credential common.CredentialIface
	// RequestTimeout bounds one HTTP exchange, body included.
	RequestTimeout time.Duration
	// MaxResponseBytes caps a response body; a larger one is an error.
	MaxResponseBytes int64
	// MaxConnsPerHost bounds the open connections (and so the requests in
	// flight) to the endpoint. Zero means no bound beyond the caller's own.
	MaxConnsPerHost int
}

// NewClient returns an SDK client for one region that is safe to share
// between goroutines. It starts from profile.NewClientProfile, keeps the
// region breaker off (it would re-send signed requests to another host), turns
// the SDK's own retries and debug dumps off (the Scanner owns retries; dumps
// print credentials) and uses a transport with timeouts and a body size cap.
func NewClient(cfg ClientConfig) (*cvmapi.Client, error) {
	if cfg.Region == "" {
		return nil, errors.New("cvm client: region is empty")
	}
	if cfg.Credential == nil {
		return nil, errors.New("cvm client: no credential")
	}
	cfg = cfg.withDefaults()
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	cpf, err := safeProfile(cfg.Endpoint, cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}

	client, err := cvmapi.NewClient(cfg.Credential, cfg.Region, cpf)
	if err != nil {
		return nil, fmt.Errorf("cvm client: %w", err)
	}
	client.WithHttpTransport(newTransport(cfg))
	client.WithDebug(false)
	return client, nil
}

// withDefaults fills the zero timeout and size cap.
func (cfg ClientConfig) withDefaults() ClientConfig {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return cfg
}

// safeProfile is the profile of every SDK client cvmwatch builds (CVM,
// Region API, STS): from profile.NewClientProfile, region breaker off (it
// would re-send signed requests to another host), SDK retries off (callers
// own their retries), debug off (dumps print credentials), POST, a timeout
// rounded up to whole seconds (the SDK's unit; 0 would mean none), and the
// endpoint override if any ("" keeps the SDK's official host).
func safeProfile(endpoint string, timeout time.Duration) (*profile.ClientProfile, error) {
	cpf := profile.NewClientProfile()
	cpf.DisableRegionBreaker = true
	cpf.Debug = false
	cpf.NetworkFailureMaxRetries = 0
	cpf.RateLimitExceededMaxRetries = 0
	cpf.Language = "en-US"
	cpf.HttpProfile.ReqMethod = http.MethodPost
	cpf.HttpProfile.ReqTimeout = int((timeout + time.Second - 1) / time.Second)
	if endpoint != "" {
		host, scheme, err := ParseEndpoint(endpoint)
		if err != nil {
			return nil, err
		}
		cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = host, scheme
	}
	return cpf, nil
}

// ParseEndpoint splits an endpoint override into the SDK's Endpoint (host and
// port, no path) and Scheme ("HTTP" or "HTTPS").
func ParseEndpoint(endpoint string) (host, scheme string, err error) {
	scheme = "HTTPS"
	rest := endpoint
	if i := strings.Index(endpoint, "://"); i >= 0 {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", "", fmt.Errorf("endpoint %q: %w", endpoint, err)
		}
		switch strings.ToLower(u.Scheme) {
		case "http":
			scheme = "HTTP"
		case "https":
		default:
			return "", "", fmt.Errorf("endpoint %q: scheme must be http or https", endpoint)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return "", "", fmt.Errorf("endpoint %q: only scheme, host and port are allowed", endpoint)
		}
		rest = u.Host
	}
	if rest == "" || strings.ContainsAny(rest, "/?# ") {
		return "", "", fmt.Errorf("endpoint %q: want host[:port]", endpoint)
	}
	return rest, scheme, nil
}

// newTransport is a dedicated transport (never http.DefaultTransport): bounded
// dial, TLS and header waits, and a response body cap.
func newTransport(cfg ClientConfig) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   max(cfg.MaxConnsPerHost, 16),
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		ForceAttemptHTTP2:     true,
	}
	return &cappedTransport{next: t, max: cfg.MaxResponseBytes}
}
