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
)

// STS AssumeRole as the API documents it (service sts, version 2018-08-13).
const (
	stsService = "sts"
	stsVersion = "2018-08-13"
	stsAction  = "AssumeRole"
)

// stsResponse is the AssumeRole answer.
type stsResponse struct {
	Response *struct {
		Credentials *struct {
			Token        string `json:"Token"`
			TmpSecretID  string `json:"TmpSecretId"`
			TmpSecretKey string `json:"TmpSecretKey"`
		} `json:"Credentials"`
		ExpiredTime int64  `json:"ExpiredTime"`
		Expiration  string `json:"Expiration"`
		RequestID   string `json:"RequestId"`
	} `json:"Response"`
}

// newAssumeRoleCredential assumes the validated role ar with base and keeps
// the temporary keys fresh; closing it closes base.
func newAssumeRoleCredential(ctx context.Context, base Credential, ar AssumeRoleConfig, cfg CredentialConfig, log *slog.Logger) (Credential, error) {
	source := "assume role " + ar.RoleARN + " (base: " + base.Source() + ")"
	endpoint := cfg.STSEndpoint
	if endpoint == "" {
		endpoint = DefaultSTSEndpoint
	}
	cpf, err := safeProfile(endpoint, cfg.HTTPTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: sts %w", source, err)
	}
	client := common.NewCommonClient(base, ar.Region, cpf)
	client.WithHttpTransport(newTransport(ClientConfig{RequestTimeout: cfg.HTTPTimeout, MaxResponseBytes: maxCredentialBody}))
	client.WithDebug(false)

	params := map[string]any{
		"RoleArn":         ar.RoleARN,
		"RoleSessionName": ar.SessionName,
		"DurationSeconds": int64(ar.Duration / time.Second),
	}
	if ar.ExternalID != "" {
		params["ExternalId"] = ar.ExternalID
	}
	fetch := func(ctx context.Context) (keys, error) {
		return assumeRole(ctx, client, params)
	}
	return startRefreshing(ctx, source, fetch, cfg.HTTPTimeout, log, base)
}

// assumeRole makes one AssumeRole call. Its errors are classified like the
// CVM API's (an auth failure matches watcher.ErrAuth) and never quote a
// response body, which could hold the keys.
func assumeRole(ctx context.Context, client *common.Client, params map[string]any) (keys, error) {
	req := tchttp.NewCommonRequest(stsService, stsVersion, stsAction)
	req.SetContext(ctx)
	if err := req.SetActionParameters(params); err != nil {
		return keys{}, fmt.Errorf("sts %s: %w", stsAction, err)
	}
	resp := tchttp.NewCommonResponse()
	if err := sendGuarded(client, req, resp); err != nil {
		err, _ := wrapError(ctx, "sts "+stsAction, err)
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			apiErr.Message = sanitizeSTSMessage(apiErr.Code, apiErr.Message)
		}
		return keys{}, err
	}
	var r stsResponse
	if err := json.Unmarshal(resp.GetBody(), &r); err != nil || r.Response == nil || r.Response.Credentials == nil {
		return keys{}, fmt.Errorf("sts %s: %w: no Response.Credentials", stsAction, ErrMalformed)
	}
	c := r.Response.Credentials
	expires := time.Unix(r.Response.ExpiredTime, 0)
	if r.Response.ExpiredTime == 0 {
		var err error
		if expires, err = time.Parse(time.RFC3339, r.Response.Expiration); err != nil {
			return keys{}, fmt.Errorf("sts %s: %w: neither ExpiredTime nor a valid Expiration (request %s)",
				stsAction, ErrMalformed, truncate(r.Response.RequestID, 64))
		}
	}
	return keys{id: c.TmpSecretID, key: c.TmpSecretKey, token: c.Token, expires: expires}, nil
}

// sanitizeSTSMessage drops the parts of an SDK client error that quote the
// response body: a body the SDK could not parse may be a partial answer
// holding the temporary keys.
func sanitizeSTSMessage(code, msg string) string {
	switch {
	case strings.HasPrefix(code, "ClientError.ParseJsonError"):
		return "the answer is not valid JSON"
	case code == "ClientError.HttpStatusCodeError":
		if i := strings.Index(msg, ", with body"); i >= 0 {
			return msg[:i]
		}
		return "unexpected HTTP status"
	}
	return msg
}
