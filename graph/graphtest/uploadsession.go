package graphtest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// uploadHostFor picks the Outlook host that pairs with the Graph host the
// session was created on.
func (s *Server) uploadHostFor(graphHost string) string {
	if c := cloudForGraphHost(graphHost); c != nil {
		for g, u := range c.graphHosts {
			if strings.EqualFold(g, graphHost) {
				return u
			}
		}
	}
	return s.uploadAddr
}

func (s *Server) openSession(c *graphCall, d *draft, item attachmentItem) *uploadSession {
	sess := &uploadSession{
		id:          "AAMkAD" + randomToken(30) + "=",
		token:       randomToken(48),
		host:        s.uploadHostFor(c.host),
		draftKey:    draftKey(d.mailbox, d.id),
		user:        d.mailbox.ID + "@" + s.cfg.TenantID,
		messageID:   d.id,
		name:        item.name,
		contentType: item.contentType,
		contentID:   item.contentID,
		isInline:    item.isInline,
		size:        item.size,
		expires:     s.now().Add(uploadSessionLifetime),
	}
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	return sess
}

// attachmentItem is the createUploadSession parameter.
type attachmentItem struct {
	attachmentType string
	name           string
	size           int64
	haveSize       bool
	contentType    string
	isInline       bool
	contentID      string
}

func parseAttachmentItem(v json.RawMessage) (attachmentItem, *graphError) {
	const typ = "microsoft.graph.attachmentItem"
	var it attachmentItem
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return it, gerr
	}
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typ)
		case "attachmenttype":
			it.attachmentType, gerr = enumValue(m.value, "microsoft.graph.attachmentType", "file", "item", "reference")
		case "name":
			it.name, gerr = stringValue(m.value)
		case "size":
			if jsonKind(m.value) != '#' {
				gerr = errLiteral(m.value, "Edm.Int64")
				break
			}
			if err := json.Unmarshal(m.value, &it.size); err != nil {
				gerr = errLiteral(m.value, "Edm.Int64")
			}
			it.haveSize = true
		case "contenttype":
			it.contentType, gerr = stringValue(m.value)
		case "isinline":
			it.isInline, gerr = boolValue(m.value)
		case "contentid":
			it.contentID, gerr = stringValue(m.value)
		default:
			gerr = errUnknownProperty(m.name, typ)
		}
		if gerr != nil {
			return it, gerr
		}
	}
	return it, nil
}

// createUploadSession handles POST .../attachments/createUploadSession for
// files from 3 MB to 150 MB.
func (c *graphCall) createUploadSession() (apiResponse, *graphError) {
	kind, gerr := c.bodyKind()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	if kind != "json" {
		return apiResponse{}, newGraphError(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"The content type '"+c.r.Header.Get("Content-Type")+"' is not supported for this action.")
	}
	body, gerr := c.readBody()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	ms, dup, err := readObject(body)
	if err != nil {
		return apiResponse{}, badRequest("BadRequest", invalidJSONMessage)
	}
	if dup != "" {
		return apiResponse{}, badRequest("RequestBodyRead", "Multiple parameters with the name '%s' were found in the request payload.", dup)
	}
	var rawItem json.RawMessage
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		if !strings.EqualFold(m.name, "AttachmentItem") {
			return apiResponse{}, badRequest("RequestBodyRead", "The parameter '%s' in the request payload is not a valid parameter for the operation 'createUploadSession'.", m.name)
		}
		rawItem = m.value
	}
	if rawItem == nil || isNull(rawItem) {
		return apiResponse{}, badRequest("ErrorInvalidRequest", "The parameter 'AttachmentItem' is required and cannot be null.")
	}
	item, gerr := parseAttachmentItem(rawItem)
	if gerr != nil {
		return apiResponse{}, gerr
	}
	switch {
	case item.attachmentType == "":
		return apiResponse{}, badRequest("ErrorInvalidRequest", "The attachmentType property is required.")
	case item.attachmentType != "file":
		return apiResponse{}, badRequest("ErrorInvalidRequest", "Only file attachments can be uploaded through an upload session.")
	case item.name == "":
		return apiResponse{}, badRequest("ErrorInvalidRequest", "The name property is required.")
	case !item.haveSize:
		return apiResponse{}, badRequest("ErrorInvalidRequest", "The size property is required.")
	case item.size < minUploadSessionBytes:
		return apiResponse{}, badRequest("ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", attachmentMinSizeMessage)
	case item.size > maxUploadSessionBytes:
		return apiResponse{}, badRequest("ErrorMessageSizeExceeded", messageSizeMessage)
	}
	d, gerr := c.findDraft()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	sess := c.s.openSession(c, d, item)
	return jsonResponse(http.StatusCreated, map[string]any{
		"@odata.context":     c.graphBase() + "/v1.0/$metadata#microsoft.graph.uploadSession",
		"uploadUrl":          sess.url(),
		"expirationDateTime": outlookTimestamp(sess.expires),
		"nextExpectedRanges": []string{"0-"},
	}), nil
}
