package graphtest

import (
	"encoding/json"
	"strings"
)

// OData type names used in error messages, as Graph prints them.
const (
	typeMessage        = "microsoft.graph.message"
	typeRecipient      = "microsoft.graph.recipient"
	typeEmailAddress   = "microsoft.graph.emailAddress"
	typeItemBody       = "microsoft.graph.itemBody"
	typeHeader         = "microsoft.graph.internetMessageHeader"
	typeSingleValue    = "microsoft.graph.singleValueLegacyExtendedProperty"
	typeMultiValue     = "microsoft.graph.multiValueLegacyExtendedProperty"
	typeFollowupFlag   = "microsoft.graph.followupFlag"
	typeDateTimeTZ     = "microsoft.graph.dateTimeTimeZone"
	typeAttachment     = "microsoft.graph.attachment"
	typeFileAttachment = "microsoft.graph.fileAttachment"
	typeItemAttachment = "microsoft.graph.itemAttachment"
	typeRefAttachment  = "microsoft.graph.referenceAttachment"
)

// readOnlyMessageProps are message properties that Exchange computes and a
// client must not send (graph-api.md §1.3).
var readOnlyMessageProps = map[string]string{
	"id": "id", "createddatetime": "createdDateTime", "lastmodifieddatetime": "lastModifiedDateTime",
	"changekey": "changeKey", "bodypreview": "bodyPreview", "conversationid": "conversationId",
	"conversationindex": "conversationIndex", "hasattachments": "hasAttachments", "isdraft": "isDraft",
	"isread": "isRead", "parentfolderid": "parentFolderId", "receiveddatetime": "receivedDateTime",
	"sentdatetime": "sentDateTime", "uniquebody": "uniqueBody", "weblink": "webLink",
	"inferenceclassification": "inferenceClassification",
}

// parseMessageJSON validates a microsoft.graph.message object against the
// CSDL-derived schema (sendmail-body.schema.json) plus the server-side rules
// of graph-api.md §1.3-1.4, and returns it decoded.
func parseMessageJSON(v json.RawMessage) (Message, *graphError) {
	msg := Message{BodyType: "text", Importance: "normal"}
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return msg, gerr
	}
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		var gerr *graphError
		switch key := strings.ToLower(m.name); key {
		case "@odata.type":
			gerr = checkODataType(m.value, typeMessage)
		case "subject":
			msg.Subject, gerr = stringValue(m.value)
		case "body":
			msg.BodyType, msg.Body, gerr = parseItemBody(m.value)
		case "torecipients":
			msg.To, gerr = parseRecipients(m.value)
		case "ccrecipients":
			msg.Cc, gerr = parseRecipients(m.value)
		case "bccrecipients":
			msg.Bcc, gerr = parseRecipients(m.value)
		case "replyto":
			msg.ReplyTo, gerr = parseRecipients(m.value)
		case "from":
			msg.From, gerr = parseOptionalRecipient(m.value)
		case "sender":
			msg.Sender, gerr = parseOptionalRecipient(m.value)
		case "importance":
			var imp string
			imp, gerr = enumValue(m.value, "microsoft.graph.importance", "low", "normal", "high")
			if imp != "" {
				msg.Importance = imp
			}
		case "internetmessageheaders":
			msg.Headers, gerr = parseInternetHeaders(m.value)
		case "internetmessageid":
			msg.InternetMessageID, gerr = stringValue(m.value)
		case "isdeliveryreceiptrequested":
			msg.DeliveryReceipt, gerr = boolValue(m.value)
		case "isreadreceiptrequested":
			msg.ReadReceipt, gerr = boolValue(m.value)
		case "categories":
			msg.Categories, gerr = parseStrings(m.value)
		case "flag":
			gerr = parseFollowupFlag(m.value)
		case "attachments":
			msg.Attachments, gerr = parseAttachments(m.value)
		case "singlevalueextendedproperties":
			msg.ExtendedProperties, gerr = parseSingleValueProps(m.value)
		case "multivalueextendedproperties":
			gerr = parseMultiValueProps(m.value)
		case "extensions":
			gerr = parseExtensions(m.value)
		default:
			if canonical, ro := readOnlyMessageProps[key]; ro {
				gerr = errReadOnly(canonical, typeMessage)
			} else {
				gerr = errUnknownProperty(m.name, typeMessage)
			}
		}
		if gerr != nil {
			return msg, gerr
		}
	}
	return msg, nil
}

func parseItemBody(v json.RawMessage) (bodyType, content string, gerr *graphError) {
	bodyType = "text"
	if isNull(v) {
		return bodyType, "", nil
	}
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return "", "", gerr
	}
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typeItemBody)
		case "content":
			content, gerr = stringValue(m.value)
		case "contenttype":
			var t string
			t, gerr = enumValue(m.value, "microsoft.graph.bodyType", "text", "html")
			if t != "" {
				bodyType = t
			}
		default:
			gerr = errUnknownProperty(m.name, typeItemBody)
		}
		if gerr != nil {
			return "", "", gerr
		}
	}
	return bodyType, content, nil
}

func invalidRecipients() *graphError {
	return badRequest("ErrorInvalidRecipients", invalidRecipientsMessage)
}

// parseRecipient reads {emailAddress:{address, name}}. Exchange resolves
// recipients before submission, so a missing or malformed address is
// ErrorInvalidRecipients rather than a reader error.
func parseRecipient(v json.RawMessage) (Address, *graphError) {
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return Address{}, gerr
	}
	var addr Address
	var haveEmail bool
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typeRecipient)
		case "emailaddress":
			if isNull(m.value) {
				continue
			}
			haveEmail = true
			addr, gerr = parseEmailAddress(m.value)
		default:
			gerr = errUnknownProperty(m.name, typeRecipient)
		}
		if gerr != nil {
			return Address{}, gerr
		}
	}
	if !haveEmail || !validAddress(addr.Address) {
		return Address{}, invalidRecipients()
	}
	return addr, nil
}

func parseEmailAddress(v json.RawMessage) (Address, *graphError) {
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return Address{}, gerr
	}
	var a Address
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typeEmailAddress)
		case "address":
			a.Address, gerr = stringValue(m.value)
		case "name":
			a.Name, gerr = stringValue(m.value)
		default:
			gerr = errUnknownProperty(m.name, typeEmailAddress)
		}
		if gerr != nil {
			return Address{}, gerr
		}
	}
	return a, nil
}

func parseRecipients(v json.RawMessage) ([]Address, *graphError) {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return nil, gerr
	}
	out := make([]Address, 0, len(items))
	for _, it := range items {
		a, gerr := parseRecipient(it)
		if gerr != nil {
			return nil, gerr
		}
		out = append(out, a)
	}
	return out, nil
}

func parseOptionalRecipient(v json.RawMessage) (*Address, *graphError) {
	if isNull(v) {
		return nil, nil
	}
	a, gerr := parseRecipient(v)
	if gerr != nil {
		return nil, gerr
	}
	return &a, nil
}

// parseInternetHeaders applies Exchange's rules for custom headers: at most
// five, each named x-..., and an empty collection is refused too.
func parseInternetHeaders(v json.RawMessage) ([]Header, *graphError) {
	if isNull(v) {
		return nil, nil
	}
	items, gerr := arrayItems(v)
	if gerr != nil {
		return nil, gerr
	}
	if len(items) == 0 {
		// Reported with this code by client code bases (graph-api.md §1.3);
		// the exact message for the empty case is not recorded anywhere.
		return nil, badRequest("InvalidInternetMessageHeaderCollection", "The internet message header collection should not be empty.")
	}
	if len(items) > 5 {
		return nil, badRequest("InvalidInternetMessageHeaderCollection", headerCountMessage)
	}
	out := make([]Header, 0, len(items))
	for _, it := range items {
		h, gerr := parseNamedValue(it, typeHeader, "name", stringValue)
		if gerr != nil {
			return nil, gerr
		}
		if len(h.Name) < 2 || !strings.EqualFold(h.Name[:2], "x-") {
			return nil, badRequest("InvalidInternetMessageHeader", "The internet message header name '%s' should start with 'x-' or 'X-'.", h.Name)
		}
		out = append(out, h)
	}
	return out, nil
}

func parseStrings(v json.RawMessage) ([]string, *graphError) {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return nil, gerr
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, gerr := stringValue(it)
		if gerr != nil {
			return nil, gerr
		}
		out = append(out, s)
	}
	return out, nil
}

func parseFollowupFlag(v json.RawMessage) *graphError {
	if isNull(v) {
		return nil
	}
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return gerr
	}
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typeFollowupFlag)
		case "flagstatus":
			_, gerr = enumValue(m.value, "microsoft.graph.followupFlagStatus", "notFlagged", "complete", "flagged")
		case "startdatetime", "duedatetime", "completeddatetime":
			gerr = parseDateTimeTimeZone(m.value)
		default:
			gerr = errUnknownProperty(m.name, typeFollowupFlag)
		}
		if gerr != nil {
			return gerr
		}
	}
	return nil
}

func parseDateTimeTimeZone(v json.RawMessage) *graphError {
	if isNull(v) {
		return nil
	}
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return gerr
	}
	var haveDateTime bool
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, typeDateTimeTZ)
		case "datetime":
			var s string
			s, gerr = stringValue(m.value)
			haveDateTime = s != ""
		case "timezone":
			_, gerr = stringValue(m.value)
		default:
			gerr = errUnknownProperty(m.name, typeDateTimeTZ)
		}
		if gerr != nil {
			return gerr
		}
	}
	if !haveDateTime {
		return badRequest("RequestBodyRead", "The property 'dateTime' of type '%s' is required.", typeDateTimeTZ)
	}
	return nil
}

func parseSingleValueProps(v json.RawMessage) ([]Header, *graphError) {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return nil, gerr
	}
	out := make([]Header, 0, len(items))
	for _, it := range items {
		p, gerr := parseNamedValue(it, typeSingleValue, "id", stringValue)
		if gerr != nil {
			return nil, gerr
		}
		if p.Name == "" {
			return nil, badRequest("ErrorInvalidExtendedProperty", "The extended property attribute combination is invalid.")
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNamedValue reads one {name or id, value} object, the shape shared by
// internetMessageHeaders and the extended properties. value parses the
// value member; nameKey is "name" or "id".
func parseNamedValue(it json.RawMessage, odataType, nameKey string, value func(json.RawMessage) (string, *graphError)) (Header, *graphError) {
	ms, gerr := objectMembers(it)
	if gerr != nil {
		return Header{}, gerr
	}
	var h Header
	for _, m := range ms {
		if isAnnotation(m.name) {
			continue
		}
		switch strings.ToLower(m.name) {
		case "@odata.type":
			gerr = checkODataType(m.value, odataType)
		case nameKey:
			h.Name, gerr = stringValue(m.value)
		case "value":
			h.Value, gerr = value(m.value)
		default:
			gerr = errUnknownProperty(m.name, odataType)
		}
		if gerr != nil {
			return Header{}, gerr
		}
	}
	return h, nil
}

// discardStrings validates a collection of strings and keeps none of it.
func discardStrings(v json.RawMessage) (string, *graphError) {
	_, gerr := parseStrings(v)
	return "", gerr
}

func parseMultiValueProps(v json.RawMessage) *graphError {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return gerr
	}
	for _, it := range items {
		p, gerr := parseNamedValue(it, typeMultiValue, "id", discardStrings)
		if gerr != nil {
			return gerr
		}
		if p.Name == "" {
			return badRequest("ErrorInvalidExtendedProperty", "The extended property attribute combination is invalid.")
		}
	}
	return nil
}

// parseExtensions accepts open extensions, which are polymorphic and carry
// arbitrary properties; each must name its type.
func parseExtensions(v json.RawMessage) *graphError {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return gerr
	}
	for _, it := range items {
		ms, gerr := objectMembers(it)
		if gerr != nil {
			return gerr
		}
		typed := false
		for _, m := range ms {
			if strings.EqualFold(m.name, "@odata.type") {
				typed = true
			}
		}
		if !typed {
			return badRequest("RequestBodyRead", "An '@odata.type' annotation is required on the abstract type 'microsoft.graph.extension'.")
		}
	}
	return nil
}
