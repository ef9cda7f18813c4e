package cvmsim

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The current Chinese edition of Tencent's "签名方法 v3" (API 3.0, cvm
// DescribeInstances, timestamp 1551113065) signs content-type;host;x-tc-action
// with the action lower-cased, masks the SecretKey, and publishes the hashes
// and the derived keys SecretDate, SecretService and SecretSigning with the
// final Signature. Every step from the canonical request on is checked here.
func TestPublishedSignatureExampleWithXTCAction(t *testing.T) {
	const (
		payload        = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
		payloadHash    = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
		canonicalHash  = "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
		secretDate     = "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
		secretService  = "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"
		secretSigning  = "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
		wantSignature  = "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
		wantCanonical  = "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\nx-tc-action:describeinstances\n\ncontent-type;host;x-tc-action\n" + payloadHash
		wantStringSign = "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n" + canonicalHash
	)
	if got := sha256Hex([]byte(payload)); got != payloadHash {
		t.Fatalf("payload hash = %s, want %s", got, payloadHash)
	}
	canonical := canonicalRequest("POST", "",
		[]string{"content-type", "host", "x-tc-action"},
		[]string{"application/json; charset=utf-8", "cvm.tencentcloudapi.com", "describeinstances"}, payloadHash)
	if canonical != wantCanonical {
		t.Fatalf("canonical request =\n%q\nwant\n%q", canonical, wantCanonical)
	}
	sts := stringToSign("1551113065", "2019-02-25/cvm/tc3_request", canonical)
	if sts != wantStringSign {
		t.Fatalf("string to sign = %q, want %q", sts, wantStringSign)
	}
	date, _ := hex.DecodeString(secretDate)
	if got := hex.EncodeToString(hmacSHA256(date, "cvm")); got != secretService {
		t.Fatalf("SecretService = %s, want %s", got, secretService)
	}
	service, _ := hex.DecodeString(secretService)
	if got := hex.EncodeToString(hmacSHA256(service, "tc3_request")); got != secretSigning {
		t.Fatalf("SecretSigning = %s, want %s", got, secretSigning)
	}
	signing, _ := hex.DecodeString(secretSigning)
	if got := signature(signing, sts); got != wantSignature {
		t.Fatalf("Signature = %s, want %s", got, wantSignature)
	}
}

// The content-type;host edition of the same example: every intermediate value
// and the final signature with the EXAMPLE key.
func TestPublishedSignatureExampleSteps(t *testing.T) {
	const payload = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	canonical := canonicalRequest("POST", "", []string{"content-type", "host"},
		[]string{"application/json; charset=utf-8", "cvm.tencentcloudapi.com"}, sha256Hex([]byte(payload)))
	if got, want := sha256Hex([]byte(canonical)), "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"; got != want {
		t.Fatalf("canonical request hash = %s, want %s", got, want)
	}
	sts := stringToSign("1551113065", "2019-02-25/cvm/tc3_request", canonical)
	key := signingKey("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "cvm")
	if got, want := signature(key, sts), "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab", true},
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request,SignedHeaders=content-type;host,Signature=ab", true},
		{"", false},
		{"TC3-HMAC-SHA256", false},
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host", false},
		{"TC3-HMAC-SHA256 Credential=/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab", false},
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;;host, Signature=ab", false},
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab, Extra=1", false},
		{"TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, Credential=X/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab", false},
	} {
		_, err := parseAuthorization(tc.header)
		if (err == nil) != tc.ok {
			t.Errorf("parseAuthorization(%q) err = %v, want ok=%v", tc.header, err, tc.ok)
		}
	}
}

func TestSignedHosts(t *testing.T) {
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"127.0.0.1:8080", []string{"127.0.0.1:8080", "127.0.0.1"}},
		{"cvm.example.test:8443", []string{"cvm.example.test:8443", "cvm.example.test"}},
		{"[::1]:8080", []string{"[::1]:8080", "[::1]"}},
		{" 127.0.0.1:8080 ", []string{"127.0.0.1:8080", "127.0.0.1"}},
		{"cvm.tencentcloudapi.com", []string{"cvm.tencentcloudapi.com"}},
		{"127.0.0.1:", []string{"127.0.0.1:"}},
		{"::1", []string{"::1"}},
		{"", []string{""}},
	} {
		if got := signedHosts(tc.host); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("signedHosts(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}
