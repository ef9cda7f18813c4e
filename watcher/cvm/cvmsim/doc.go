// Package cvmsim is a fake Tencent Cloud CVM API (API 3.0, service "cvm",
// version 2017-03-12) that the official Go SDK cannot tell from the real one.
//
// It is shaped like net/http/httptest: NewServer listens on loopback, Endpoint
// is what goes into the SDK's HttpProfile.Endpoint (with Scheme "HTTP"), and
// Close stops everything. It serves DescribeInstancesStatus and
// DescribeInstances over POST (JSON body) and GET (indexed query arrays),
// verifies TC3-HMAC-SHA256 signatures, enforces a per-(action, SecretId) token
// bucket, pages like the real API (newest instance first, so a creation during
// a scan shifts later offsets), and answers every request with HTTP 200 and a
// {"Response":{...,"RequestId":"<uuid>"}} envelope.
//
// The same endpoint also serves STS AssumeRole (service "sts", version
// 2018-08-13, credential scope <date>/sts/tc3_request): it validates RoleArn,
// RoleSessionName, ExternalId and DurationSeconds (900..43200, default 7200;
// InvalidParameter.ParamError, InvalidParameter.OverTimeError,
// InvalidParameterValue) and issues a temporary SecretId, SecretKey and Token
// (lifetime capped by Options.STSMaxDuration). Requests signed with a
// temporary key must carry its token in X-TC-Token; a missing or wrong token
// or an expired key is AuthFailure.TokenFailure. AssumeRole uses no quota and
// only faults whose Action is AssumeRole (error, timeout) apply to it; see
// sts.go and IssueTemporaryCredentials.
//
// Beside the API it keeps ground truth: every state change of the simulated
// fleet, whether made by a test (SetState, Create, Release), by the churn
// engine (Options.Churn) or by a fault that really changes the fleet
// (FaultShiftInsert, FaultShiftRelease), is recorded in History. Faults
// (AddFault) make the API misbehave in the ways a poller must survive.
//
// An unsigned admin API under /_sim/ exposes the same controls over HTTP for
// `cvmwatch sim`; see Server.Handler. The server listens on loopback by
// default; do not expose the admin API to a network.
//
// # Order of checks for an API request
//
//  1. method GET or POST, else UnsupportedProtocol; body at most 10 MiB, else
//     RequestSizeLimitExceeded;
//  2. X-TC-Action, X-TC-Version and X-TC-Timestamp present, else
//     MissingParameter; X-TC-Timestamp an integer, else InvalidParameter;
//  3. the TC3-HMAC-SHA256 signature (AuthFailure.*);
//  4. the action (InvalidAction) and version (NoSuchVersion);
//  5. the region: missing is MissingParameter; a region the server does not
//     serve is UnsupportedRegion unless it is a real Tencent region name, which
//     answers as an account with no instances there;
//  6. error faults (FaultError), which therefore use no quota;
//  7. the quota (RequestLimitExceeded, counted in Stats.Throttled), then the
//     configured latency plus latency faults;
//  8. transport faults (timeout, html-502, non-json, empty-object,
//     empty-response), whatever the parameters;
//  9. the action's parameters: Content-Type application/json for POST, JSON
//     or indexed query syntax (InvalidParameter), unknown names
//     (UnknownParameter, case-sensitive), InstanceIds (at most 100:
//     InvalidParameterValue.LimitExceeded; each ^ins-[a-z0-9]{8}$:
//     InvalidInstanceId.Malformed), InstanceIds with Filters
//     (InvalidParameter), Offset >= 0 and Limit 1..100
//     (InvalidParameterValue), Filters (InvalidFilter,
//     InvalidFilterValue.LimitExceeded);
//  10. fleet faults (shift-insert, shift-release), the page, data faults,
//     and last the truncated fault.
//
// # The signed host, and which SDKs can be pointed at the simulator
//
// The canonical "host" header is accepted in exactly two forms: the Host the
// client sent, and that Host without its port (an IPv6 host keeps its
// brackets). Any other port or name is AuthFailure.SignatureFailure, as is a
// port added to a Host sent without one. The official SDKs sign it so (Go
// common v1.3.211 as pinned; the others' GitHub repositories
// TencentCloud/tencentcloud-sdk-python at bf29717, -java at 970d68b and
// -nodejs at 48cf451):
//
//   - Go, tencentcloud/common/client.go sendWithSignatureV3: Host =
//     request.GetDomain(), the endpoint as given (316), and the canonical
//     "host:%s" is headers["Host"] (412): with the port.
//   - Python, tencentcloud/common/abstract_client.py _build_req_with_tc3_signature:
//     req.header["Host"] = endpoint (195), canonical 'host:%s' is
//     req.header["Host"] (245-246); abstract_client_async.py likewise
//     (398, 421, 590-591): with the port.
//   - Java, src/main/java/com/tencentcloudapi/common/AbstractClient.java
//     doRequestWithTC3: "host:" + endpoint (779) and .add("Host", endpoint)
//     (838); getAuthorization likewise (254, 286): with the port.
//   - Node.js, src/common/sign.ts sign3: `host:${urlObj.hostname}` (69),
//     without the port, while src/common/http/http_connection.ts sends
//     Host: new URL(url).host (117), with it (a WHATWG URL drops only a
//     scheme's default port, so then both agree).
//
// None signs a third form. A request the Node.js SDK signs for one port is
// therefore also valid at another port of the same host; that is inherent in
// how it signs.
//
// The credential scope names a service, and there the SDKs differ too: Go
// takes it from the request ("cvm", client.go 464) and Python from the
// client class (_service = 'cvm', cvm/v20170312/cvm_client.py 26;
// abstract_client.py 219), but Java (AbstractClient.java 124, 312, 805) and
// Node.js (src/common/abstract_client.ts 346) take the first dot-separated
// label of the endpoint: "127" for 127.0.0.1:9000. The simulator accepts
// the action's service ("cvm", "sts", "region") or the first label of the
// Host the request was sent to, which is what those SDKs compute for this
// very endpoint; any other service is SignatureFailure ("The credential
// scope must be ..."). So every official SDK can be pointed at
// 127.0.0.1:PORT as it is.
//
// Listing order is creation order, newest first, the same for both actions;
// InstanceIds and Filters select from it and Offset/Limit page the selection.
// An unknown but well-formed instance ID is simply absent.
package cvmsim
