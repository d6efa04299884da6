package graphtest

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
)

// bodyKind classifies a request by Content-Type: Graph reads JSON as OData
// and text/plain as base64 MIME, and refuses anything else.
func (c *graphCall) bodyKind() (string, *graphError) {
	ct := c.r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case "application/json":
			return "json", nil
		case "text/plain":
			return "mime", nil
		}
	}
	return "", newGraphError(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
		"The content type '"+ct+"' is not supported. Use 'application/json' or, for MIME content, 'text/plain'.")
}

// sendMail handles POST /users/{id}/sendMail.
func (c *graphCall) sendMail() (apiResponse, *graphError) {
	kind, gerr := c.bodyKind()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	body, gerr := c.readBody()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	d := Delivery{
		Mailbox:         c.route.mailbox,
		Kind:            kind,
		ClientRequestID: c.r.Header.Get("client-request-id"),
		RequestID:       c.requestID,
		SaveToSentItems: true,
	}
	if kind == "json" {
		d.Message, d.SaveToSentItems, gerr = parseSendMailJSON(body)
	} else {
		d.MIME, d.Message, gerr = parseMIMEBody(body)
	}
	if gerr != nil {
		return apiResponse{}, gerr
	}
	if gerr := c.checkSubmission(d.Message); gerr != nil {
		return apiResponse{}, gerr
	}
	d.At = c.s.now()
	c.s.recordDelivery(d)
	return apiResponse{status: http.StatusAccepted}, nil
}

// checkSubmission applies the rules Exchange enforces when a message is
// submitted: at least one recipient, and From/Sender must be the mailbox or
// an address it has Send As rights on.
func (c *graphCall) checkSubmission(m Message) *graphError {
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		return badRequest("ErrorInvalidRecipients", invalidRecipientsMessage+", A message can't be sent because it contains no recipients.")
	}
	for _, a := range []*Address{m.From, m.Sender} {
		if a != nil && !c.s.maySendAs(c.mb, a.Address) {
			return newGraphError(http.StatusForbidden, "ErrorSendAsDenied", sendAsDeniedMessage)
		}
	}
	return nil
}

// parseSendMailJSON reads the sendMail action parameters. Parameter names
// are matched case-insensitively (the docs say message, the CSDL Message),
// and SaveToSentItems may be a boolean or the string "true"/"false" as in
// the documentation's own example.
func parseSendMailJSON(body []byte) (Message, bool, *graphError) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return Message{}, false, badRequest("BadRequest", invalidJSONMessage)
	}
	ms, dup, err := readObject(body)
	if err != nil {
		if err == errNotObject {
			return Message{}, false, errNode(jsonKind(body), 'o')
		}
		return Message{}, false, badRequest("BadRequest", invalidJSONMessage)
	}
	if dup != "" {
		return Message{}, false, badRequest("RequestBodyRead", "Multiple parameters with the name '%s' were found in the request payload.", dup)
	}
	save := true
	var rawMessage json.RawMessage
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "message":
			rawMessage = m.value
		case "savetosentitems":
			v, gerr := parseLenientBool(m.value)
			if gerr != nil {
				return Message{}, false, gerr
			}
			save = v
		default:
			return Message{}, false, badRequest("RequestBodyRead", "The parameter '%s' in the request payload is not a valid parameter for the operation 'sendMail'.", m.name)
		}
	}
	if rawMessage == nil || isNull(rawMessage) {
		// Message is Nullable="false" in the CSDL; a body whose message
		// properties sit at the top level (DOC-sendMail Example 5) fails
		// on its first property above, and an empty or null one here.
		return Message{}, false, badRequest("ErrorInvalidRequest", "The parameter 'Message' is required and cannot be null.")
	}
	msg, gerr := parseMessageJSON(rawMessage)
	return msg, save, gerr
}

// parseLenientBool reads SaveToSentItems: true, false, null (the default,
// true) or the strings "true"/"false" in any case.
func parseLenientBool(v json.RawMessage) (bool, *graphError) {
	switch jsonKind(v) {
	case 'n':
		return true, nil
	case 'b':
		return boolValue(v)
	case 's':
		s, gerr := stringValue(v)
		if gerr != nil {
			return false, gerr
		}
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errLiteral(v, "Edm.Boolean")
}
