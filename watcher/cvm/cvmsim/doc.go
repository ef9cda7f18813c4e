// Package cvmsim is a fake Tencent Cloud CVM API (API 3.0, service "cvm",
// version 2017-03-12) that the official Go SDK cannot tell from the real one.
//
// It is shaped like net/http/httptest: NewServer listens on loopback, Endpoint
// is what goes into the SDK's HttpProfile.Endpoint (with Scheme "HTTP"), and
// Close stops everything. It serves DescribeInstancesStatus and
// DescribeInstances (see "What DescribeInstances describes") over POST (JSON body) and GET (indexed query arrays),
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
// The same endpoint also serves CloudAudit LookUpEvents (service
// "cloudaudit", version 2019-03-19, credential scope
// <date>/cloudaudit/tc3_request, its own quota of Options.AuditRateLimit,
// default 20 requests/s per SecretId, through the same error, quota,
// latency, transport and truncation faults as the CVM actions): see
// audit.go and "Operations and attribution" below.
//
// # What DescribeInstances describes
//
// Every item has the fields of the SDK's cvm/v20170312.Instance an
// enricher reads, in the real API's shapes: InstanceName, Placement.Zone
// (a zone of the region), InstanceType with CPU and Memory,
// PrivateIpAddresses, PublicIpAddresses (null without a public IP), Tags
// (0 to 5 in the seeded fleet), InstanceChargeType (POSTPAID_BY_HOUR,
// PREPAID, SPOTPAID), CreatedTime, ExpiredTime and RenewFlag (null unless
// PREPAID), RestrictState (NORMAL, EXPIRED), IsolatedSource (NOTISOLATED;
// MANMADE once TerminateInstances put it in SHUTDOWN; ARREAR or EXPIRE for
// an isolation), LatestOperation, LatestOperationState,
// LatestOperationRequestId and LatestOperationErrorMsg (null unless
// FAILED). Update and the admin API change names, tags and the rest
// without a state change.
//
// # Operations and attribution
//
// Every operation the simulator makes (the churn engine's RunInstances,
// StopInstances, StartInstances, RebootInstances and TerminateInstances;
// Operate; Update, CreateOperated and the admin API with "operation") gets
// a fresh random request ID and becomes the instance's LatestOperation*:
// OPERATING while its transitional states last, then SUCCESS, or FAILED
// with a message and no state change (churn operations fail with
// probability Options.OperationFailureRate; LAUNCH_FAILED fails its
// RunInstances). A state change without an operation (SetState, a PUT
// without "operation") leaves LatestOperation* alone, so a stale operation
// stays visible as it does in the real API. A tenth of the churn engine's
// terminations are isolations for arrears or expiry instead: SHUTDOWN with
// no operation, RestrictState EXPIRED, IsolatedSource ARREAR or EXPIRE.
//
// Each operation is recorded (Operations, GET /_sim/operations: request ID,
// action, instance, region, time, actor, source IP, outcome), and each
// Change in History names the operation that caused it (Operation,
// RequestID; empty when none did). LookUpEvents answers from these records,
// each visible Options.AuditDelay after its operation (server clock), by
// StartTime/EndTime (Unix seconds, inclusive, at most 30 days apart),
// LookupAttributes (ANDed; RequestId, EventName, ActionType, ResourceId,
// ResourceName, SourceIPAddress and PrincipalId are modelled, the other
// valid keys match nothing), MaxResults (1..50, default 10) and NextToken,
// newest first, as Event{EventId, Username (the actor), EventTime (Unix
// seconds as a string), EventName, RequestID, SourceIPAddress,
// ResourceRegion, Resources{cvm, instance ID}, CloudAuditEvent,
// ...}. The initial fleet's operations predate the simulator: they are
// neither recorded nor found. An operation made with Update.Unaudited (the
// admin API's "audited": false) is never found.
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
// LookUpEvents follows the same order, with its own parameters at 9
// (MissingParameter, InvalidParameterValue.Time, LimitExceeded.OverTime,
// InvalidParameterValue.MaxResult, InvalidParameterValue.attributeKey,
// InvalidParameterValue for Mode and NextToken, UnknownParameter) and no
// fleet faults at 10. AuthFailure.UnauthorizedOperation (a role without
// the permission) is an error fault with the Action it denies.
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
// the action's service ("cvm", "sts", "region", "cloudaudit") or the first label of the
// Host the request was sent to, which is what those SDKs compute for this
// very endpoint; any other service is SignatureFailure ("The credential
// scope must be ..."). So every official SDK can be pointed at
// 127.0.0.1:PORT as it is.
//
// Listing order is creation order, newest first, the same for both actions;
// InstanceIds and Filters select from it and Offset/Limit page the selection.
// An unknown but well-formed instance ID is simply absent.
package cvmsim
