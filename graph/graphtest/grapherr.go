package graphtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Messages Graph returns verbatim (graph-api.md §3.2).
const (
	sendAsDeniedMessage      = "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."
	mailboxNotEnabledMessage = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
	accessPolicyMessage      = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."
	accessDeniedMessage      = "Access is denied. Check credentials and try again."
	invalidRecipientsMessage = "At least one recipient is not valid."
	headerCountMessage       = "Maximum number of headers in one message should be less than or equal to 5."
	invalidJSONMessage       = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
	invalidMIMEBase64Message = "Invalid base64 string for MIME content."
	invalidMIMEMessage       = "MIME content does not contain all required information, malformed formatting, or empty."
	itemNotFoundMessage      = "The specified object was not found in the store."
	messageSizeMessage       = "The message exceeds the maximum supported size., Cannot save changes made to an item to store."
	attachmentMinSizeMessage = "Attachment size must be greater than the minimum size."
)

// graphError is a Graph failure before it is rendered with the request's
// ids into the OData error body.
type graphError struct {
	status  int
	code    string
	message string
	header  http.Header
}

func (e *graphError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func newGraphError(status int, code, message string) *graphError {
	return &graphError{status: status, code: code, message: message}
}

func badRequest(code, format string, args ...any) *graphError {
	return newGraphError(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

// apiResponse is a fully decided response. Handlers return one instead of
// writing, so that faults, recording and the common headers are applied in
// one place.
type apiResponse struct {
	status      int
	header      http.Header
	contentType string
	body        []byte
}

func jsonResponse(status int, v any) apiResponse {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fake-owned values are marshalled
	}
	return apiResponse{status: status, contentType: "application/json", body: b}
}

type odataInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

type odataMainError struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	InnerError odataInnerError `json:"innerError"`
}

type odataError struct {
	Error odataMainError `json:"error"`
}

// render produces the OData error body Graph uses, with innerError carrying
// the date (UTC, no fraction, no zone, as Graph prints it) and both ids.
func (e *graphError) render(now time.Time, requestID, clientRequestID string) apiResponse {
	resp := jsonResponse(e.status, odataError{Error: odataMainError{
		Code:    e.code,
		Message: e.message,
		InnerError: odataInnerError{
			Date:            now.UTC().Format("2006-01-02T15:04:05"),
			RequestID:       requestID,
			ClientRequestID: clientRequestID,
		},
	}})
	resp.header = e.header
	return resp
}
