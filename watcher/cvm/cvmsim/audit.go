package cvmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CloudAudit LookUpEvents (service "cloudaudit", version 2019-03-19),
// served on the same endpoint as the CVM API and signed with the credential
// scope <date>/cloudaudit/tc3_request. It answers from the operations the
// simulator recorded (Operations), each visible Options.AuditDelay after it
// was made.
const (
	ActionLookUpEvents = "LookUpEvents"
	AuditVersion       = "2019-03-19"
	auditService       = "cloudaudit"
)

// Error codes of LookUpEvents (cloudaudit/v20190319 errors.go).
const (
	CodeAuditInvalidTime         = "InvalidParameterValue.Time"
	CodeAuditInvalidMaxResult    = "InvalidParameterValue.MaxResult"
	CodeAuditInvalidAttributeKey = "InvalidParameterValue.attributeKey"
	CodeAuditOverTime            = "LimitExceeded.OverTime"
	// CodeAuthUnauthorizedOperation is the common error of a request the
	// caller's CAM policy does not allow: what an error fault with this
	// code simulates for DescribeInstances or LookUpEvents.
	CodeAuthUnauthorizedOperation = "AuthFailure.UnauthorizedOperation"
)

// Limits of LookUpEvents. The span limit is documented for DescribeEvents
// ("< 30 days") and LookUpEvents has the LimitExceeded.OverTime code; the
// MaxResults bounds are the older API documentation's (default 10, at most
// 50).
const (
	auditDefaultMax = 10
	auditMaxResults = 50
	auditMaxSpan    = 30 * 24 * 60 * 60 // seconds
	// AuditAccountID is the AccountID of every event (the simulated root
	// account's UIN).
	AuditAccountID = 100000000001
)

// auditAttributeKeys are the valid AttributeKey values (SDK comment).
var auditAttributeKeys = map[string]bool{
	"RequestId": true, "EventName": true, "ActionType": true, "PrincipalId": true, "ResourceId": true,
	"ResourceName": true, "AccessKeyId": true, "SensitiveAction": true, "ApiErrorCode": true,
	"CamErrorCode": true, "SourceIPAddress": true, "Tags": true,
}

type auditAttr struct{ key, value string }

// auditParams are the parameters of LookUpEvents.
type auditParams struct {
	start, end         int64
	hasStart, hasEnd   bool
	attrs              []auditAttr
	nextToken          string
	hasToken           bool
	maxResults         int64
	hasMax             bool
	mode               string
	attrKeyNull        bool
	attrIndexMalformed bool
}

// parseAuditParams decodes LookUpEvents' parameters from a JSON body (POST)
// or an indexed query (GET: LookupAttributes.N.AttributeKey).
func parseAuditParams(r *http.Request, body []byte) (auditParams, *apiError) {
	if r.Method == http.MethodGet {
		return parseAuditQuery(r.URL.RawQuery)
	}
	var p auditParams
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return p, nil
	}
	var raw struct {
		StartTime        *int64 `json:"StartTime"`
		EndTime          *int64 `json:"EndTime"`
		LookupAttributes []*struct {
			AttributeKey   *string `json:"AttributeKey"`
			AttributeValue *string `json:"AttributeValue"`
		} `json:"LookupAttributes"`
		NextToken  *string `json:"NextToken"`
		MaxResults *int64  `json:"MaxResults"`
		Mode       *string `json:"Mode"`
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return p, unknownParam(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		}
		return p, errorf(CodeInvalidParameter, "The request body is not valid for LookUpEvents.")
	}
	if raw.StartTime != nil {
		p.start, p.hasStart = *raw.StartTime, true
	}
	if raw.EndTime != nil {
		p.end, p.hasEnd = *raw.EndTime, true
	}
	for _, a := range raw.LookupAttributes {
		if a == nil || a.AttributeKey == nil {
			p.attrKeyNull = true
			continue
		}
		v := ""
		if a.AttributeValue != nil {
			v = *a.AttributeValue
		}
		p.attrs = append(p.attrs, auditAttr{*a.AttributeKey, v})
	}
	if raw.NextToken != nil {
		p.nextToken, p.hasToken = *raw.NextToken, true
	}
	if raw.MaxResults != nil {
		p.maxResults, p.hasMax = *raw.MaxResults, true
	}
	if raw.Mode != nil {
		p.mode = *raw.Mode
	}
	return p, nil
}

func parseAuditQuery(rawQuery string) (auditParams, *apiError) {
	var p auditParams
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, errorf(CodeInvalidParameter, "The query string is not validly encoded.")
	}
	attrs := map[int]*auditAttr{}
	for name, vals := range q {
		v := vals[len(vals)-1]
		var perr error
		switch {
		case name == "StartTime":
			p.start, perr = strconv.ParseInt(v, 10, 64)
			p.hasStart = true
		case name == "EndTime":
			p.end, perr = strconv.ParseInt(v, 10, 64)
			p.hasEnd = true
		case name == "MaxResults":
			p.maxResults, perr = strconv.ParseInt(v, 10, 64)
			p.hasMax = true
		case name == "NextToken":
			p.nextToken, p.hasToken = v, true
		case name == "Mode":
			p.mode = v
		case strings.HasPrefix(name, "LookupAttributes."):
			idx, field, _ := strings.Cut(strings.TrimPrefix(name, "LookupAttributes."), ".")
			i, ok := parseIndex(idx)
			if !ok || field != "AttributeKey" && field != "AttributeValue" {
				return p, unknownParam(name)
			}
			a := attrs[i]
			if a == nil {
				a = &auditAttr{}
				attrs[i] = a
			}
			if field == "AttributeKey" {
				a.key = v
			} else {
				a.value = v
			}
		case isCommonQueryParam(name):
		default:
			return p, unknownParam(name)
		}
		if perr != nil {
			return p, typeError(name, "an integer")
		}
	}
	for _, i := range sortedKeys(attrs) {
		p.attrs = append(p.attrs, *attrs[i])
	}
	return p, nil
}

// validateAudit checks the parameters as the real API does and fills in
// the default MaxResults.
func validateAudit(p *auditParams) *apiError {
	switch {
	case !p.hasStart:
		return errorf(CodeMissingParameter, "The request is missing a required parameter `StartTime`.")
	case !p.hasEnd:
		return errorf(CodeMissingParameter, "The request is missing a required parameter `EndTime`.")
	case p.end < p.start:
		return errorf(CodeAuditInvalidTime, "`EndTime` must not be before `StartTime`.")
	case p.end-p.start > auditMaxSpan:
		return errorf(CodeAuditOverTime, "The time range must be shorter than 30 days.")
	case p.mode != "" && p.mode != "standard" && p.mode != "quick":
		return errorf(CodeInvalidParameterValue, "`Mode` must be standard or quick.")
	case p.attrKeyNull:
		return errorf(CodeAuditInvalidAttributeKey, "A `LookupAttributes` element has no `AttributeKey`.")
	}
	if !p.hasMax {
		p.maxResults = auditDefaultMax
	}
	if p.maxResults < 1 || p.maxResults > auditMaxResults {
		return errorf(CodeAuditInvalidMaxResult, fmt.Sprintf("`MaxResults` must be between 1 and %d.", auditMaxResults))
	}
	for _, a := range p.attrs {
		if !auditAttributeKeys[a.key] {
			return errorf(CodeAuditInvalidAttributeKey, "The `AttributeKey` `"+clip(a.key)+"` is not supported.")
		}
	}
	if p.hasToken && p.nextToken != "" {
		if n, err := strconv.Atoi(p.nextToken); err != nil || n < 0 {
			return errorf(CodeInvalidParameterValue, "The `NextToken` is not one this API issued.")
		}
	}
	return nil
}

// attribute returns what op shows for an AttributeKey, and whether it
// shows anything: keys the simulator does not model (AccessKeyId,
// SensitiveAction, ApiErrorCode, CamErrorCode, Tags) match no event.
func (op *Operation) attribute(key string) (string, bool) {
	switch key {
	case "RequestId":
		return op.RequestID, true
	case "EventName":
		return op.Action, true
	case "ActionType":
		return "Write", true
	case "ResourceId", "ResourceName":
		return op.InstanceID, true
	case "SourceIPAddress":
		return op.SourceIP, true
	case "PrincipalId":
		return op.Actor, true
	}
	return "", false
}

// auditResource is an Event's Resources.
type auditResource struct {
	ResourceType *string `json:"ResourceType"`
	ResourceName *string `json:"ResourceName"`
}

// auditEvent is an element of Events, in the shape of the SDK's
// cloudaudit/v20190319.Event.
type auditEvent struct {
	EventId         *string        `json:"EventId"`
	Username        *string        `json:"Username"`
	EventTime       *string        `json:"EventTime"`
	CloudAuditEvent *string        `json:"CloudAuditEvent"`
	ResourceTypeCn  *string        `json:"ResourceTypeCn"`
	ErrorCode       *int64         `json:"ErrorCode"`
	EventName       *string        `json:"EventName"`
	SecretId        *string        `json:"SecretId"`
	EventSource     *string        `json:"EventSource"`
	RequestID       *string        `json:"RequestID"`
	ResourceRegion  *string        `json:"ResourceRegion"`
	AccountID       *int64         `json:"AccountID"`
	SourceIPAddress *string        `json:"SourceIPAddress"`
	EventNameCn     *string        `json:"EventNameCn"`
	Resources       *auditResource `json:"Resources"`
	EventRegion     *string        `json:"EventRegion"`
	Location        *string        `json:"Location"`
}

// auditSecretID is the masked SecretId events show.
const auditSecretID = "AKID********************cvmsim"

func eventNameCn(action string) string {
	switch action {
	case ActionRunInstances:
		return "创建实例"
	case ActionStopInstances:
		return "关闭实例"
	case ActionStartInstances:
		return "开启实例"
	case ActionRebootInstances:
		return "重启实例"
	case ActionTerminateInstances:
		return "退还实例"
	}
	return action
}

// toEvent renders op as a LookUpEvents event. EventTime is the Unix time
// in seconds as a decimal string (the format of the API's examples;
// UNVERIFIED against a live account). CloudAuditEvent is a JSON document
// in the spirit of the real one's (userIdentity, eventTime, sourceIPAddress,
// requestParameters...): illustrative, not a verified schema.
func (op *Operation) toEvent() auditEvent {
	ts := strconv.FormatInt(op.Time.Unix(), 10)
	detail, _ := json.Marshal(map[string]any{
		"eventVersion": 2,
		"userIdentity": map[string]any{
			"type": identityType(op.Actor), "principalId": op.Actor, "userName": op.Actor,
			"accountId": strconv.Itoa(AuditAccountID), "secretId": auditSecretID,
		},
		"eventTime":         ts,
		"sourceIPAddress":   op.SourceIP,
		"userAgent":         "cvmsim",
		"eventType":         "ApiCall",
		"eventRegion":       op.Region,
		"eventSource":       "cvm.tencentcloudapi.com",
		"eventName":         op.Action,
		"apiVersion":        APIVersion,
		"actionType":        "Write",
		"resourceType":      "cvm",
		"requestID":         op.RequestID,
		"eventID":           op.EventID,
		"errorCode":         0,
		"errorMessage":      "",
		"requestParameters": `{"InstanceIds":["` + op.InstanceID + `"]}`,
		"resources":         "qcs::cvm:" + op.Region + ":uin/" + strconv.Itoa(AuditAccountID) + ":instance/" + op.InstanceID,
	})
	account := int64(AuditAccountID)
	errCode := int64(0)
	return auditEvent{
		EventId:         optStr2(op.EventID),
		Username:        optStr2(op.Actor),
		EventTime:       optStr2(ts),
		CloudAuditEvent: optStr2(string(detail)),
		ResourceTypeCn:  optStr2("云服务器"),
		ErrorCode:       &errCode,
		EventName:       optStr2(op.Action),
		SecretId:        optStr2(auditSecretID),
		EventSource:     optStr2("cvm.tencentcloudapi.com"),
		RequestID:       optStr2(op.RequestID),
		ResourceRegion:  optStr2(op.Region),
		AccountID:       &account,
		SourceIPAddress: optStr2(op.SourceIP),
		EventNameCn:     optStr2(eventNameCn(op.Action)),
		Resources:       &auditResource{ResourceType: optStr2("cvm"), ResourceName: optStr2(op.InstanceID)},
		EventRegion:     optStr2(op.Region),
		Location:        optStr2(""),
	}
}

func identityType(actor string) string {
	switch {
	case actor == "root":
		return "root"
	case actor == "roleUser":
		return "AssumedRole"
	}
	return "CAMUser"
}

// auditPage is one answer of LookUpEvents before encoding.
type auditPage struct {
	events    []auditEvent
	nullSet   bool
	nullMeta  bool
	nextToken string
	listOver  bool
	total     uint64
}

// lookUpLocked answers a validated LookUpEvents request at now: the
// audited operations visible by now (made at least AuditDelay ago) whose
// time lies within [StartTime, EndTime] (Unix seconds, inclusive) and
// that match every LookupAttribute, newest first; NextToken continues
// after the last event of the previous page. TotalCount is the number of
// matching events on every page.
func (s *Server) lookUpLocked(p auditParams, now time.Time) auditPage {
	after := len(s.fleet.ops)
	if p.hasToken && p.nextToken != "" {
		after, _ = strconv.Atoi(p.nextToken)
	}
	var pg auditPage
	var matched []int
	for i := len(s.fleet.ops) - 1; i >= 0; i-- {
		op := s.fleet.ops[i]
		if !op.Audited || now.Before(op.Time.Add(s.opts.AuditDelay)) {
			continue
		}
		if t := op.Time.Unix(); t < p.start || t > p.end {
			continue
		}
		ok := true
		for _, a := range p.attrs {
			if v, known := op.attribute(a.key); !known || v != a.value {
				ok = false
				break
			}
		}
		if ok {
			matched = append(matched, i)
		}
	}
	pg.total = uint64(len(matched))
	rest := matched[sort.Search(len(matched), func(k int) bool { return matched[k] < after }):]
	n := min(len(rest), int(p.maxResults))
	for _, i := range rest[:n] {
		pg.events = append(pg.events, s.fleet.ops[i].toEvent())
	}
	pg.listOver = n == len(rest)
	if !pg.listOver {
		pg.nextToken = strconv.Itoa(rest[n-1])
	}
	return pg
}

// applyAuditFault changes pg as f says and reports whether it did anything.
func applyAuditFault(pg *auditPage, f Fault) bool {
	switch f.Kind {
	case FaultNullFields:
		pg.nullMeta = true
		if len(pg.events) == 0 {
			pg.nullSet = true
			return true
		}
		e := &pg.events[0]
		e.Username, e.EventTime, e.EventName, e.SourceIPAddress, e.Resources = nil, nil, nil, nil, nil
		return true
	case FaultLyingTotal:
		pg.total = uint64(max(f.TotalCount, 0))
		return true
	case FaultDuplicate:
		if len(pg.events) == 0 {
			return false
		}
		pg.events = append(pg.events, pg.events[0])
		return true
	case FaultHostileValues:
		if len(pg.events) == 0 {
			return false
		}
		vals := hostileValues()
		for i := range pg.events {
			pg.events[i].Username = optStr2(vals[i%len(vals)])
			pg.events[i].SourceIPAddress = optStr2(vals[(i+1)%len(vals)])
		}
		return true
	}
	return false
}

// encodeAuditPage renders pg as LookUpEvents' success response.
func encodeAuditPage(pg auditPage, requestID string) []byte {
	var r struct {
		Response struct {
			NextToken  *string      `json:"NextToken"`
			Events     []auditEvent `json:"Events"`
			ListOver   *bool        `json:"ListOver"`
			TotalCount *uint64      `json:"TotalCount"`
			RequestId  string       `json:"RequestId"`
		} `json:"Response"`
	}
	r.Response.RequestId = requestID
	if !pg.nullSet {
		r.Response.Events = append([]auditEvent{}, pg.events...)
	}
	if !pg.nullMeta {
		if pg.nextToken != "" {
			r.Response.NextToken = &pg.nextToken
		}
		r.Response.ListOver = &pg.listOver
		r.Response.TotalCount = &pg.total
	}
	b, err := json.Marshal(r)
	if err != nil {
		return encodeError(errorf(CodeInternalError, "encode response"), requestID)
	}
	return b
}
