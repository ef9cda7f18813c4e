package cvmsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes the simulator answers with. The names follow Tencent's common
// error codes (API 3.0 "公共错误码") and the codes the cvm SDK lists for
// DescribeInstances and DescribeInstancesStatus.
const (
	CodeAuthInvalidAuthorization = "AuthFailure.InvalidAuthorization"
	CodeAuthSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeAuthSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeAuthSignatureFailure     = "AuthFailure.SignatureFailure"

	CodeInvalidAction                  = "InvalidAction"
	CodeNoSuchVersion                  = "NoSuchVersion"
	CodeUnsupportedRegion              = "UnsupportedRegion"
	CodeUnsupportedProtocol            = "UnsupportedProtocol"
	CodeMissingParameter               = "MissingParameter"
	CodeUnknownParameter               = "UnknownParameter"
	CodeInvalidParameter               = "InvalidParameter"
	CodeInvalidParameterValue          = "InvalidParameterValue"
	CodeLimitExceeded                  = "InvalidParameterValue.LimitExceeded"
	CodeInstanceIDMalformed            = "InvalidInstanceId.Malformed"
	CodeInvalidFilter                  = "InvalidFilter"
	CodeFilterValueLimitExceeded       = "InvalidFilterValue.LimitExceeded"
	CodeRequestLimitExceeded           = "RequestLimitExceeded"
	CodeRequestSizeLimitExceeded       = "RequestSizeLimitExceeded"
	CodeInternalError                  = "InternalError"
	CodeServiceUnavailable             = "ServiceUnavailable"
	maxRequestBody               int64 = 10 << 20
)

// apiError is an error answered inside the Response envelope with HTTP 200.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, msg string) *apiError { return &apiError{Code: code, Message: msg} }

// newRequestID returns a random UUID version 4, as the real API does.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

type errorBody struct {
	Response struct {
		Error struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
		RequestID string `json:"RequestId"`
	} `json:"Response"`
}

// encodeError renders the error envelope of the real API.
func encodeError(e *apiError, requestID string) []byte {
	var b errorBody
	b.Response.Error.Code = e.Code
	b.Response.Error.Message = e.Message
	b.Response.RequestID = requestID
	out, err := json.Marshal(b)
	if err != nil { // cannot happen: only strings
		return []byte(`{"Response":{"Error":{"Code":"InternalError","Message":"encode"},"RequestId":"` + requestID + `"}}`)
	}
	return out
}

// writeRaw writes one complete response with an exact Content-Length.
func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, body []byte) {
	writeRaw(w, http.StatusOK, "application/json", body)
}
