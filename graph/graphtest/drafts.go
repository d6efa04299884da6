package graphtest

import (
	"net/http"
	"strings"
	"time"
)

// draft is a message in the mailbox's Drafts folder, built by the large
// attachment path (graph-api.md §2).
type draft struct {
	id      string
	mailbox Mailbox
	msg     Message
	created time.Time
}

// snapshot copies the message so it can be used after s.mu is released;
// attachments are the only part later requests change.
func (d *draft) snapshot() Message {
	m := d.msg
	m.Attachments = append([]Attachment{}, d.msg.Attachments...)
	return m
}

// draftKey scopes message ids to their mailbox: a draft created through the
// address is the same item when later addressed through the object id.
func draftKey(mb Mailbox, messageID string) string {
	return strings.ToLower(mb.ID) + "/" + messageID
}

// graphTimestamp formats times the way Graph serialises Edm.DateTimeOffset.
func graphTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// outlookTimestamp formats times with the seven fractional digits of the
// Outlook REST layer, as in uploadSession.expirationDateTime.
func outlookTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

func (c *graphCall) graphBase() string { return "https://" + c.r.Host }

func itemNotFound() *graphError {
	return newGraphError(http.StatusNotFound, "ErrorItemNotFound", itemNotFoundMessage)
}

func (c *graphCall) findDraft() (*draft, *graphError) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	d, ok := c.s.drafts[draftKey(c.mb, c.route.messageID)]
	if !ok {
		return nil, itemNotFound()
	}
	return d, nil
}

// createDraft handles POST /users/{id}/messages. The body is a message
// itself (no action wrapper), in JSON or as base64 MIME.
func (c *graphCall) createDraft() (apiResponse, *graphError) {
	kind, gerr := c.bodyKind()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	body, gerr := c.readBody()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	var msg Message
	if kind == "json" {
		if len(strings.TrimSpace(string(body))) == 0 {
			return apiResponse{}, badRequest("BadRequest", invalidJSONMessage)
		}
		msg, gerr = parseMessageJSON(body)
	} else {
		_, msg, gerr = parseMIMEBody(body)
	}
	if gerr != nil {
		return apiResponse{}, gerr
	}
	d := &draft{id: newMessageID(), mailbox: c.mb, msg: msg, created: c.s.now()}
	// Render before publishing: once stored, other requests may change it.
	resp := jsonResponse(http.StatusCreated, c.draftJSON(d))
	c.s.mu.Lock()
	c.s.drafts[draftKey(c.mb, d.id)] = d
	c.s.mu.Unlock()
	resp.header = http.Header{"Location": []string{
		c.graphBase() + "/v1.0/users('" + c.route.mailbox + "')/messages('" + d.id + "')",
	}}
	return resp, nil
}

type emailAddressJSON struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

type recipientJSON struct {
	EmailAddress emailAddressJSON `json:"emailAddress"`
}

func recipientsJSON(as []Address) []recipientJSON {
	out := make([]recipientJSON, 0, len(as))
	for _, a := range as {
		out = append(out, recipientJSON{EmailAddress: emailAddressJSON(a)})
	}
	return out
}

// draftJSON renders the message resource Graph returns on creation.
func (c *graphCall) draftJSON(d *draft) map[string]any {
	ts := graphTimestamp(d.created)
	preview := d.msg.Body
	if len(preview) > 255 {
		preview = preview[:255]
	}
	var from any
	if d.msg.From != nil {
		from = recipientJSON{EmailAddress: emailAddressJSON(*d.msg.From)}
	}
	changeKey := randomToken(18)
	return map[string]any{
		"@odata.context":             c.graphBase() + "/v1.0/$metadata#users('" + c.route.mailbox + "')/messages/$entity",
		"@odata.etag":                `W/"` + changeKey + `"`,
		"id":                         d.id,
		"createdDateTime":            ts,
		"lastModifiedDateTime":       ts,
		"changeKey":                  changeKey,
		"categories":                 append([]string{}, d.msg.Categories...),
		"receivedDateTime":           ts,
		"sentDateTime":               ts,
		"hasAttachments":             len(d.msg.Attachments) > 0,
		"internetMessageId":          "<" + randomToken(12) + "@graphtest.local>",
		"subject":                    d.msg.Subject,
		"bodyPreview":                preview,
		"importance":                 d.msg.Importance,
		"parentFolderId":             "AQMkADrafts" + randomToken(9),
		"conversationId":             "AAQkAD" + randomToken(24),
		"conversationIndex":          randomToken(16),
		"isDeliveryReceiptRequested": d.msg.DeliveryReceipt,
		"isReadReceiptRequested":     d.msg.ReadReceipt,
		"isRead":                     true,
		"isDraft":                    true,
		"webLink":                    "https://outlook.office365.com/owa/?ItemID=" + d.id + "&exvsurl=1&viewmodel=ReadMessageItem",
		"inferenceClassification":    "focused",
		"body":                       map[string]string{"contentType": d.msg.BodyType, "content": d.msg.Body},
		"sender":                     from,
		"from":                       from,
		"toRecipients":               recipientsJSON(d.msg.To),
		"ccRecipients":               recipientsJSON(d.msg.Cc),
		"bccRecipients":              recipientsJSON(d.msg.Bcc),
		"replyTo":                    recipientsJSON(d.msg.ReplyTo),
		"flag":                       map[string]string{"flagStatus": "notFlagged"},
	}
}

// deleteDraft handles DELETE /users/{id}/messages/{mid}, which also ends any
// upload session still open on the draft.
func (c *graphCall) deleteDraft() (apiResponse, *graphError) {
	key := draftKey(c.mb, c.route.messageID)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if _, ok := c.s.drafts[key]; !ok {
		return apiResponse{}, itemNotFound()
	}
	delete(c.s.drafts, key)
	c.s.dropSessionsLocked(key)
	return apiResponse{status: http.StatusNoContent}, nil
}

// addAttachment handles POST /users/{id}/messages/{mid}/attachments, which
// takes one attachment under 3 MB (DOC-addAtt).
func (c *graphCall) addAttachment() (apiResponse, *graphError) {
	kind, gerr := c.bodyKind()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	if kind != "json" {
		return apiResponse{}, newGraphError(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"The content type '"+c.r.Header.Get("Content-Type")+"' is not supported for attachments.")
	}
	body, gerr := c.readBody()
	if gerr != nil {
		return apiResponse{}, gerr
	}
	if _, gerr := c.findDraft(); gerr != nil {
		return apiResponse{}, gerr
	}
	a, gerr := parseAttachment(body)
	if gerr != nil {
		return apiResponse{}, gerr
	}
	if len(a.Content) >= maxInlineAttachmentBytes {
		return apiResponse{}, newGraphError(http.StatusRequestEntityTooLarge, "ErrorMessageSizeExceeded", messageSizeMessage)
	}
	c.s.mu.Lock()
	d, ok := c.s.drafts[draftKey(c.mb, c.route.messageID)]
	if ok {
		d.msg.Attachments = append(d.msg.Attachments, a)
	}
	c.s.mu.Unlock()
	if !ok {
		return apiResponse{}, itemNotFound()
	}
	id := "AAMkAD" + randomToken(40) + "="
	return jsonResponse(http.StatusCreated, map[string]any{
		"@odata.context":          c.graphBase() + "/v1.0/$metadata#users('" + c.route.mailbox + "')/messages('" + c.route.messageID + "')/attachments/$entity",
		"@odata.type":             "#microsoft.graph.fileAttachment",
		"@odata.mediaContentType": a.ContentType,
		"id":                      id,
		"lastModifiedDateTime":    graphTimestamp(c.s.now()),
		"name":                    a.Name,
		"contentType":             a.ContentType,
		"size":                    len(a.Content),
		"isInline":                a.IsInline,
		"contentId":               nullable(a.ContentID),
		"contentLocation":         nil,
		"contentBytes":            a.Content,
	}), nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// sendDraft handles POST /users/{id}/messages/{mid}/send. The documentation
// marks Content-Length: 0 as required, and Graph answers 411 without it.
func (c *graphCall) sendDraft() (apiResponse, *graphError) {
	if !hasContentLength(c.r) {
		return apiResponse{}, newGraphError(http.StatusLengthRequired, "LengthRequired", "A Content-Length header is required for this request.")
	}
	if _, gerr := c.readBody(); gerr != nil {
		return apiResponse{}, gerr
	}
	key := draftKey(c.mb, c.route.messageID)
	c.s.mu.Lock()
	d, ok := c.s.drafts[key]
	var msg Message
	if ok {
		msg = d.snapshot()
	}
	c.s.mu.Unlock()
	if !ok {
		return apiResponse{}, itemNotFound()
	}
	if gerr := c.checkSubmission(msg); gerr != nil {
		return apiResponse{}, gerr
	}
	c.s.mu.Lock()
	_, stillThere := c.s.drafts[key]
	if stillThere {
		// Sending moves the item out of Drafts, so its id stops resolving
		// and its open upload sessions end.
		msg = d.snapshot()
		delete(c.s.drafts, key)
		c.s.dropSessionsLocked(key)
	}
	c.s.mu.Unlock()
	if !stillThere {
		return apiResponse{}, itemNotFound()
	}
	c.s.recordDelivery(Delivery{
		Mailbox:         c.route.mailbox,
		Kind:            "draft",
		ClientRequestID: c.r.Header.Get("client-request-id"),
		RequestID:       c.requestID,
		SaveToSentItems: true,
		Message:         msg,
		DraftID:         d.id,
		At:              c.s.now(),
	})
	return apiResponse{status: http.StatusAccepted}, nil
}
