package cvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxCredentialBody caps a metadata or STS response.
const maxCredentialBody = 64 << 10

// metadataCredentials is the answer of
// /latest/meta-data/cam/security-credentials/<role>.
type metadataCredentials struct {
	TmpSecretID  string `json:"TmpSecretId"`
	TmpSecretKey string `json:"TmpSecretKey"`
	Token        string `json:"Token"`
	ExpiredTime  int64  `json:"ExpiredTime"`
	Expiration   string `json:"Expiration"`
	Code         string `json:"Code"`
}

// newCVMRoleCredential fetches the temporary keys of the CAM role bound to
// this instance from the metadata service and keeps them fresh. Unlike the
// SDK's CvmRoleProvider, every call has a timeout, goes through no proxy and
// follows no redirect.
func newCVMRoleCredential(ctx context.Context, cfg CredentialConfig, log *slog.Logger) (Credential, error) {
	role := cfg.CVMRole
	if !roleNamePattern.MatchString(role) {
		return nil, fmt.Errorf("cvm role %q: not a valid CAM role name", role)
	}
	endpoint, err := metadataEndpoint(cfg.MetadataEndpoint)
	if err != nil {
		return nil, fmt.Errorf("cvm role %s: %w", role, err)
	}
	credURL := endpoint + "/latest/meta-data/cam/security-credentials/" + url.PathEscape(role)
	client := newMetadataClient(cfg.HTTPTimeout)
	fetch := func(ctx context.Context) (keys, error) {
		return fetchMetadataCredentials(ctx, client, credURL, role, endpoint)
	}
	return startRefreshing(ctx, "cvm role "+role, fetch, cfg.HTTPTimeout, log, nil)
}

// ErrNoCVMRole means the metadata service says no CAM role is bound to this
// instance.
var ErrNoCVMRole = errors.New("no CAM role is bound to this instance")

// DiscoverCVMRole asks the metadata service at endpoint (default
// DefaultMetadataEndpoint) which CAM role is bound to this instance, as the
// SDK's default chain does before it fetches the role's keys, but with
// timeout bounding the call. The answer must be one valid role name.
func DiscoverCVMRole(ctx context.Context, endpoint string, timeout time.Duration) (string, error) {
	endpoint, err := metadataEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if timeout <= 0 {
		timeout = DefaultCredentialTimeout
	}
	body, err := metadataGet(ctx, newMetadataClient(timeout), endpoint+"/latest/meta-data/cam/security-credentials/", endpoint)
	if errors.Is(err, errMetadataNotFound) {
		return "", fmt.Errorf("%w (%w)", ErrNoCVMRole, err)
	}
	if err != nil {
		return "", err
	}
	role := strings.TrimSpace(string(body))
	if role == "" {
		return "", fmt.Errorf("%w (metadata service at %s listed none)", ErrNoCVMRole, endpoint)
	}
	if !roleNamePattern.MatchString(role) {
		// The answer is not quoted: a misdirected endpoint could answer with
		// credentials, and this error is logged.
		return "", fmt.Errorf("%w: metadata service at %s listed %d bytes that are not one CAM role name", ErrMalformed, endpoint, len(role))
	}
	return role, nil
}

// metadataEndpoint checks an http(s)://host[:port] metadata endpoint ("" is
// the default) and returns it without a trailing slash.
func metadataEndpoint(endpoint string) (string, error) {
	if endpoint == "" {
		endpoint = DefaultMetadataEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("metadata endpoint %q: want http://host[:port]", endpoint)
	}
	return strings.TrimRight(endpoint, "/"), nil
}

// newMetadataClient is a client for the link-local metadata service: no
// proxy, bounded dial and header wait, whole-call timeout, no redirects.
func newMetadataClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          2,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// errMetadataNotFound is the metadata service's 404.
var errMetadataNotFound = errors.New("not found")

// metadataGet makes one GET of the metadata service and returns the body of
// a 200 answer, at most maxCredentialBody bytes. A 404 is
// errMetadataNotFound, for the caller to say what was not found. No error
// quotes the body: it may hold keys.
func metadataGet(ctx context.Context, client *http.Client, u, endpoint string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("metadata service unreachable at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCredentialBody+1))
	if err != nil {
		return nil, fmt.Errorf("metadata service at %s: reading the answer: %w", endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, &metadataNotFound{endpoint: endpoint, status: resp.Status}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("metadata service at %s answered %s", endpoint, truncate(resp.Status, 64))
	case len(body) > maxCredentialBody:
		return nil, fmt.Errorf("%w: metadata answer larger than %d bytes", ErrMalformed, maxCredentialBody)
	}
	return body, nil
}

// metadataNotFound is a 404 answer; it matches errMetadataNotFound.
type metadataNotFound struct{ endpoint, status string }

func (e *metadataNotFound) Error() string {
	return "metadata service at " + e.endpoint + " answered " + e.status
}

func (e *metadataNotFound) Is(target error) bool { return target == errMetadataNotFound }

// fetchMetadataCredentials makes one GET of the role's credentials.
func fetchMetadataCredentials(ctx context.Context, client *http.Client, credURL, role, endpoint string) (keys, error) {
	body, err := metadataGet(ctx, client, credURL, endpoint)
	if errors.Is(err, errMetadataNotFound) {
		return keys{}, fmt.Errorf("no CVM role %q bound to this instance (%w)", role, err)
	}
	if err != nil {
		return keys{}, err
	}
	var mc metadataCredentials
	if err := json.Unmarshal(body, &mc); err != nil {
		// The JSON error text is not kept: it could quote part of the body.
		return keys{}, fmt.Errorf("%w: metadata answer is not the credentials JSON", ErrMalformed)
	}
	if mc.Code != "Success" {
		return keys{}, fmt.Errorf("metadata service answered Code %q for role %q", truncate(mc.Code, 64), role)
	}
	expires := time.Unix(mc.ExpiredTime, 0)
	if mc.ExpiredTime == 0 {
		if expires, err = time.Parse(time.RFC3339, mc.Expiration); err != nil {
			return keys{}, fmt.Errorf("%w: metadata answer has neither ExpiredTime nor a valid Expiration", ErrMalformed)
		}
	}
	return keys{id: mc.TmpSecretID, key: mc.TmpSecretKey, token: mc.Token, expires: expires}, nil
}
