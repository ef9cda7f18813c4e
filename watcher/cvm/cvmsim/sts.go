package cvmsim

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// STS AssumeRole (service "sts", version 2018-08-13), served on the same
// endpoint as the CVM API so that a test can point both the STS client and
// the CVM client at one simulator. Requests carry X-TC-Action: AssumeRole and
// are signed with the credential scope <date>/sts/tc3_request.
const (
	ActionAssumeRole = "AssumeRole"
	STSVersion       = "2018-08-13"
	stsService       = "sts"
)

// Error codes of STS and of temporary credentials, from Tencent's STS error
// code list (sts/v20180813/errors.go) and the common error codes.
const (
	CodeAuthTokenFailure      = "AuthFailure.TokenFailure"
	CodeSTSParamError         = "InvalidParameter.ParamError"
	CodeSTSOverTimeError      = "InvalidParameter.OverTimeError"
	stsDefaultDurationSeconds = 7200
	stsMinDurationSeconds     = 900
	stsMaxDurationSeconds     = 43200
	stsExpiredGrace           = time.Hour // expired keys answer TokenFailure this long, then are forgotten
)

// roleArnPattern accepts the documented RoleArn forms:
// qcs::cam::uin/<uin>:roleName/<name>, qcs::cam::uin/<uin>:role/<id> and the
// service-role forms role/tencentcloudServiceRole[Name]/<...>.
var (
	roleArnPattern     = regexp.MustCompile(`^qcs::cam::uin/[0-9]{1,20}:(roleName/[\w+=,.@-]{1,128}|role/[0-9]{1,20}|role/tencentcloudServiceRole/[0-9]{1,20}|role/tencentcloudServiceRoleName/[\w+=,.@-]{1,128})$`)
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,128}$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]{2,128}$`)
)

// tempCredential is one issued temporary key pair with its token.
type tempCredential struct {
	key     string
	token   string
	expires time.Time // valid while server time is before it
}

// stsState holds the temporary credentials issued so far. It has its own
// lock because authentication reads it without Server.mu.
type stsState struct {
	mu    sync.Mutex
	creds map[string]tempCredential
}

// IssueTemporaryCredentials issues a temporary SecretId, SecretKey and Token
// valid for d of server time, as AssumeRole would, without an API call. A
// request signed with them must carry the token in X-TC-Token.
func (s *Server) IssueTemporaryCredentials(d time.Duration) (id, key, token string) {
	id, key, token, _ = s.issue(d)
	return id, key, token
}

// issue makes and records a new temporary credential. The expiry is rounded
// down to the second, as ExpiredTime reports it.
func (s *Server) issue(d time.Duration) (id, key, token string, expires time.Time) {
	now := s.now()
	expires = time.Unix(now.Add(d).Unix(), 0)
	id, key, token = "AKID"+randomText(32), randomText(40), randomText(96)
	s.sts.mu.Lock()
	defer s.sts.mu.Unlock()
	if s.sts.creds == nil {
		s.sts.creds = map[string]tempCredential{}
	}
	for k, c := range s.sts.creds {
		if now.Sub(c.expires) > stsExpiredGrace {
			delete(s.sts.creds, k)
		}
	}
	s.sts.creds[id] = tempCredential{key: key, token: token, expires: expires}
	return id, key, token, expires
}

// secretKey returns the key of a permanent or temporary SecretId; temp is
// set for a temporary one.
func (s *Server) secretKey(id string) (key string, temp *tempCredential, ok bool) {
	if key, ok := s.creds[id]; ok {
		return key, nil, true
	}
	s.sts.mu.Lock()
	defer s.sts.mu.Unlock()
	if c, ok := s.sts.creds[id]; ok {
		return c.key, &c, true
	}
	return "", nil, false
}

// checkToken verifies, after the signature, that a request signed with a
// temporary key carries its token and that the key has not expired. Keys
// that are not temporary ignore X-TC-Token.
func checkToken(temp *tempCredential, token string, now time.Time) *apiError {
	switch {
	case temp == nil:
		return nil
	case token == "":
		return errorf(CodeAuthTokenFailure, "A temporary SecretId needs its token in X-TC-Token.")
	case !equalHex(temp.token, token):
		return errorf(CodeAuthTokenFailure, "The token does not match the temporary SecretId.")
	case !now.Before(temp.expires):
		return errorf(CodeAuthTokenFailure, "The temporary credentials have expired.")
	}
	return nil
}

// assumeRoleParams are the AssumeRole parameters the simulator reads.
type assumeRoleParams struct {
	RoleArn         *string `json:"RoleArn"`
	RoleSessionName *string `json:"RoleSessionName"`
	DurationSeconds *int64  `json:"DurationSeconds"`
	Policy          *string `json:"Policy"`
	ExternalID      *string `json:"ExternalId"`
}

// serveAssumeRole answers an authenticated AssumeRole request. It uses no
// quota; only faults whose Action is AssumeRole apply to it (error and
// timeout faults), so faults aimed at the CVM API leave STS alone.
func (s *Server) serveAssumeRole(r *http.Request, body []byte, rid string) reply {
	s.mu.Lock()
	var rep *reply
	s.fireLocked(faultMatch{action: ActionAssumeRole}, true, func(f Fault) bool {
		if f.Action != ActionAssumeRole {
			return false
		}
		switch f.Kind {
		case FaultError:
			e := errorReply(errorf(f.Code, "Injected by cvmsim."), rid)
			rep = &e
		case FaultTimeout:
			rep = &reply{hang: true, note: "timeout fault"}
		}
		return true
	}, FaultError, FaultTimeout)
	s.mu.Unlock()
	if rep != nil {
		return *rep
	}
	p, aerr := parseAssumeRole(r, body)
	if aerr != nil {
		return errorReply(aerr, rid)
	}
	d := time.Duration(stsDefaultDurationSeconds) * time.Second
	if p.DurationSeconds != nil {
		d = time.Duration(*p.DurationSeconds) * time.Second
	}
	if m := s.opts.STSMaxDuration; m > 0 && d > m {
		d = m
	}
	id, key, token, expires := s.issue(d)
	var out struct {
		Response struct {
			Credentials struct {
				Token        string `json:"Token"`
				TmpSecretID  string `json:"TmpSecretId"`
				TmpSecretKey string `json:"TmpSecretKey"`
			} `json:"Credentials"`
			ExpiredTime int64  `json:"ExpiredTime"`
			Expiration  string `json:"Expiration"`
			RequestID   string `json:"RequestId"`
		} `json:"Response"`
	}
	out.Response.Credentials.Token = token
	out.Response.Credentials.TmpSecretID = id
	out.Response.Credentials.TmpSecretKey = key
	out.Response.ExpiredTime = expires.Unix()
	out.Response.Expiration = expires.UTC().Format(time.RFC3339)
	out.Response.RequestID = rid
	b, err := json.Marshal(out)
	if err != nil {
		return errorReply(errorf(CodeInternalError, "encode"), rid)
	}
	return jsonReply(b, "ok")
}

// parseAssumeRole decodes and validates the parameters of a POST (JSON) or
// GET (query) AssumeRole request.
func parseAssumeRole(r *http.Request, body []byte) (assumeRoleParams, *apiError) {
	var p assumeRoleParams
	if r.Method == http.MethodGet {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return p, errorf(CodeInvalidParameter, "The query string is not validly encoded.")
		}
		for name, vals := range q {
			v := vals[0]
			switch name {
			case "RoleArn":
				p.RoleArn = &v
			case "RoleSessionName":
				p.RoleSessionName = &v
			case "Policy":
				p.Policy = &v
			case "ExternalId":
				p.ExternalID = &v
			case "DurationSeconds":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return p, typeError(name, "an integer")
				}
				p.DurationSeconds = &n
			default:
				if !isCommonQueryParam(name) {
					return p, unknownParam(name)
				}
			}
		}
	} else {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return p, errorf(CodeInvalidParameter, "POST requests signed with TC3-HMAC-SHA256 must have Content-Type application/json.")
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				return p, unknownParam(strings.Trim(name, `"`))
			}
			return p, errorf(CodeInvalidParameter, "The request body is not a valid AssumeRole parameter object.")
		}
	}
	switch {
	case p.RoleArn == nil:
		return p, errorf(CodeMissingParameter, "The request is missing a required parameter `RoleArn`.")
	case p.RoleSessionName == nil:
		return p, errorf(CodeMissingParameter, "The request is missing a required parameter `RoleSessionName`.")
	case !roleArnPattern.MatchString(*p.RoleArn):
		return p, errorf(CodeSTSParamError, fmt.Sprintf("The RoleArn `%s` is not valid; want qcs::cam::uin/<uin>:roleName/<name>.", clip(*p.RoleArn)))
	case !sessionNamePattern.MatchString(*p.RoleSessionName):
		return p, errorf(CodeSTSParamError, "The RoleSessionName must be 2-128 characters of [\\w+=,.@-].")
	case p.ExternalID != nil && !externalIDPattern.MatchString(*p.ExternalID):
		return p, errorf(CodeSTSParamError, "The ExternalId must be 2-128 characters of [\\w+=,.@:/-].")
	case p.DurationSeconds != nil && *p.DurationSeconds > stsMaxDurationSeconds:
		return p, errorf(CodeSTSOverTimeError, fmt.Sprintf("DurationSeconds %d exceeds the maximum of %d.", *p.DurationSeconds, stsMaxDurationSeconds))
	case p.DurationSeconds != nil && *p.DurationSeconds < stsMinDurationSeconds:
		return p, errorf(CodeInvalidParameterValue, fmt.Sprintf("DurationSeconds %d is below the minimum of %d.", *p.DurationSeconds, stsMinDurationSeconds))
	}
	return p, nil
}

// randomText returns n random characters of [A-Za-z0-9].
func randomText(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
