package cvmsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// TC3-HMAC-SHA256 as documented in Tencent's API 3.0 "签名方法 v3" and as the
// Go SDK computes it (common/client.go sendWithSignatureV3).
const (
	tc3Algorithm    = "TC3-HMAC-SHA256"
	tc3Service      = "cvm"
	tc3Terminator   = "tc3_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	maxClockSkew    = 300 // seconds, "more than five minutes" is expired
	maxSignedHeader = 32
)

// DefaultSecretID and DefaultSecretKey are the credentials the server accepts
// when Options.Credentials is empty.
const (
	DefaultSecretID  = "AKIDcvmsim"
	DefaultSecretKey = "cvmsim-secret-key"
)

// authorization is a parsed Authorization header.
type authorization struct {
	secretID      string
	date          string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
}

func invalidAuthorization(msg string) *apiError {
	return errorf(CodeAuthInvalidAuthorization, "The Authorization header is not valid TC3-HMAC-SHA256: "+msg+".")
}

// parseAuthorization parses
// "TC3-HMAC-SHA256 Credential=ID/DATE/cvm/tc3_request, SignedHeaders=a;b, Signature=HEX".
func parseAuthorization(h string) (authorization, *apiError) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if h == "" {
		return a, invalidAuthorization("missing")
	}
	if !ok || alg != tc3Algorithm {
		return a, invalidAuthorization("the algorithm must be " + tc3Algorithm)
	}
	var credential string
	var haveCred, haveHeaders, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, invalidAuthorization("malformed field")
		}
		switch k {
		case "Credential":
			if haveCred {
				return a, invalidAuthorization("duplicate Credential")
			}
			credential, haveCred = v, true
		case "SignedHeaders":
			if haveHeaders {
				return a, invalidAuthorization("duplicate SignedHeaders")
			}
			haveHeaders = true
			if v == "" {
				return a, invalidAuthorization("empty SignedHeaders")
			}
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			if haveSig {
				return a, invalidAuthorization("duplicate Signature")
			}
			a.signature, haveSig = v, true
		default:
			return a, invalidAuthorization("unknown field")
		}
	}
	if !haveCred || !haveHeaders || !haveSig || a.signature == "" {
		return a, invalidAuthorization("Credential, SignedHeaders and Signature are required")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 4 || scope[0] == "" {
		return a, invalidAuthorization("Credential must be SecretId/Date/Service/tc3_request")
	}
	a.secretID, a.date, a.service, a.terminator = scope[0], scope[1], scope[2], scope[3]
	if len(a.signedHeaders) > maxSignedHeader {
		return a, invalidAuthorization("too many SignedHeaders")
	}
	var haveCT, haveHost bool
	for _, name := range a.signedHeaders {
		if !isLowerToken(name) {
			return a, invalidAuthorization("SignedHeaders must be lower-case header names")
		}
		haveCT = haveCT || name == "content-type"
		haveHost = haveHost || name == "host"
	}
	if !haveCT || !haveHost {
		return a, invalidAuthorization("SignedHeaders must include content-type and host")
	}
	return a, nil
}

// isLowerToken reports whether s is a non-empty lower-case HTTP token.
func isLowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// canonicalRequest builds step 1 of the signature: method, URI "/", query,
// "name:value\n" per signed header, the signed header list and the payload
// hash, joined by newlines.
func canonicalRequest(method, query string, names, values []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteString("\n/\n")
	b.WriteString(query)
	b.WriteString("\n")
	for i, n := range names {
		b.WriteString(n)
		b.WriteString(":")
		b.WriteString(values[i])
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(names, ";"))
	b.WriteString("\n")
	b.WriteString(payloadHash)
	return b.String()
}

// stringToSign builds step 2: algorithm, timestamp, credential scope and the
// hash of the canonical request.
func stringToSign(timestamp, scope, canonical string) string {
	return tc3Algorithm + "\n" + timestamp + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
}

// signingKey derives kSigning = HMAC(HMAC(HMAC("TC3"+key, date), service), "tc3_request").
func signingKey(secretKey, date, service string) []byte {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, tc3Terminator)
}

// signature is step 3: the hex HMAC of the string to sign.
func signature(key []byte, sts string) string {
	return hex.EncodeToString(hmacSHA256(key, sts))
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// authenticate verifies the TC3-HMAC-SHA256 signature of r and returns the
// SecretId that signed it. Checks, in order: the header's shape
// (InvalidAuthorization), the SecretId (SecretIdNotFound), the timestamp
// against server time (SignatureExpire), the credential scope (service "sts"
// for AssumeRole, "region" for DescribeRegions, "cloudaudit" for
// LookUpEvents, "cvm" otherwise) and the signature itself
// (SignatureFailure), then for a temporary SecretId its X-TC-Token and expiry
// (TokenFailure). Replays of a correctly signed request are accepted: TC3 has
// no nonce.
func (s *Server) authenticate(r *http.Request, body []byte, env envelope, now time.Time) (string, *apiError) {
	id, temp, aerr := s.verifySignature(r, body, env, now)
	if aerr != nil {
		return "", aerr
	}
	if aerr := checkToken(temp, r.Header.Get("X-TC-Token"), now); aerr != nil {
		return "", aerr
	}
	return id, nil
}

// verifySignature is authenticate without the token check; temp is the
// temporary credential of the SecretId, if it is one.
func (s *Server) verifySignature(r *http.Request, body []byte, env envelope, now time.Time) (id string, temp *tempCredential, aerr *apiError) {
	var a authorization
	a, aerr = parseAuthorization(r.Header.Get("Authorization"))
	if aerr != nil {
		return "", nil, aerr
	}
	service := serviceOf(env.action)
	secretKey, temp, ok := s.secretKey(a.secretID)
	if !ok {
		return "", nil, errorf(CodeAuthSecretIDNotFound, "The SecretId is not found, please ensure that your SecretId is correct.")
	}
	n := now.Unix()
	if env.timestamp < n-maxClockSkew || env.timestamp > n+maxClockSkew {
		return "", nil, errorf(CodeAuthSignatureExpire, fmt.Sprintf("Signature expired. Timestamp %d differs from server time %d by more than five minutes.", env.timestamp, n))
	}
	date := time.Unix(env.timestamp, 0).UTC().Format("2006-01-02")
	if a.date != date || !scopeService(a.service, service, r.Host) || a.terminator != tc3Terminator {
		return "", nil, errorf(CodeAuthSignatureFailure, "The credential scope must be "+date+"/"+service+"/"+tc3Terminator+".")
	}
	service = a.service // the one the client signed with, checked above
	query := ""
	if r.Method == http.MethodGet {
		query = r.URL.RawQuery
	}
	payload := body
	if r.Header.Get("X-TC-Content-SHA256") == unsignedPayload {
		payload = []byte(unsignedPayload)
	}
	payloadHash := sha256Hex(payload)
	scope := date + "/" + service + "/" + tc3Terminator
	key := signingKey(secretKey, date, service)
	matches := func(values []string) bool {
		want := signature(key, stringToSign(env.timestampRaw, scope, canonicalRequest(r.Method, query, a.signedHeaders, values, payloadHash)))
		return equalHex(want, a.signature)
	}
	for _, host := range signedHosts(r.Host) {
		values := make([]string, len(a.signedHeaders))
		for i, name := range a.signedHeaders {
			if name == "host" {
				values[i] = host
			} else {
				values[i] = strings.TrimSpace(strings.Join(r.Header.Values(name), ","))
			}
		}
		// The documentation lower-cases header values
		// (x-tc-action:describeinstances); the SDKs sign them as sent.
		if matches(values) || matches(lowerAll(values)) {
			return a.secretID, temp, nil
		}
	}
	return "", nil, errorf(CodeAuthSignatureFailure, "The provided credentials could not be validated. Please check your signature is correct.")
}

// scopeService reports whether signed, the service named in a request's
// credential scope, is acceptable for an API whose service is want. The Go
// and Python SDKs name the API's service; the Node.js and Java SDKs take the
// first label of the endpoint they were given (endpoint.split(".")[0]),
// which is the service on every real endpoint (cvm.tencentcloudapi.com) but
// "127" for 127.0.0.1:9000, "localhost:9000" for localhost:9000. So the first
// label of the Host the request was sent to is accepted too: it is what
// those SDKs compute for this very endpoint, and the signature still binds
// the key, the date and every signed header.
func scopeService(signed, want, host string) bool {
	if signed == want {
		return true
	}
	label, _, _ := strings.Cut(host, ".") // port and all when there is no dot, as they split it
	return signed != "" && signed == label
}

// signedHosts returns the values a client may have signed for the host
// header of a request sent with Host host: host as sent, which is what the Go,
// Python and Java SDKs sign, and, when host has a port, host without it, which
// is what the Node.js SDK signs (the URL's hostname, while it sends Host with
// the port). An IPv6 host keeps its brackets, as a URL's hostname does. No
// other form is accepted: not another port, not another name.
func signedHosts(host string) []string {
	host = strings.TrimSpace(host)
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return []string{host, host[:len(host)-len(port)-1]}
	}
	return []string{host}
}

func lowerAll(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.ToLower(v)
	}
	return out
}

func equalHex(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
