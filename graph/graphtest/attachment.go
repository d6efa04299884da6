package graphtest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Attachment size limits (graph-api.md §1.6 and §2). Microsoft writes "3 MB"
// without saying which megabyte; 3,000,000 is used for both the inline
// ceiling and the upload-session floor so that every size has exactly one
// valid path, instead of inventing a gap Graph may not have.
const (
	maxInlineAttachmentBytes = 3_000_000
	minUploadSessionBytes    = 3_000_000
	maxUploadSessionBytes    = 150 * 1024 * 1024
	maxUploadChunkBytes      = 4 * 1024 * 1024
)

// attachmentBaseProps are the properties of the abstract attachment type;
// anything else on an attachment without @odata.type is what Graph names in
// its "does not exist on type 'microsoft.graph.attachment'" error.
var attachmentBaseProps = map[string]bool{
	"id": true, "contenttype": true, "isinline": true, "lastmodifieddatetime": true, "name": true, "size": true,
}

func parseAttachments(v json.RawMessage) ([]Attachment, *graphError) {
	items, gerr := arrayItems(v)
	if gerr != nil {
		return nil, gerr
	}
	out := make([]Attachment, 0, len(items))
	for _, it := range items {
		a, gerr := parseAttachment(it)
		if gerr != nil {
			return nil, gerr
		}
		out = append(out, a)
	}
	return out, nil
}

// parseAttachment validates one attachment. attachment is abstract in the
// CSDL, so the concrete type must be named with @odata.type.
func parseAttachment(v json.RawMessage) (Attachment, *graphError) {
	ms, gerr := objectMembers(v)
	if gerr != nil {
		return Attachment{}, gerr
	}
	var odataType json.RawMessage
	for _, m := range ms {
		if strings.EqualFold(m.name, "@odata.type") {
			odataType = m.value
		}
	}
	if odataType == nil {
		for _, m := range ms {
			if !isAnnotation(m.name) && !attachmentBaseProps[strings.ToLower(m.name)] {
				return Attachment{}, errUnknownProperty(m.name, typeAttachment)
			}
		}
		return Attachment{}, badRequest("RequestBodyRead", "An '@odata.type' annotation is required to create an instance of the abstract type '%s'.", typeAttachment)
	}
	t, gerr := stringValue(odataType)
	if gerr != nil {
		return Attachment{}, gerr
	}
	switch strings.ToLower(strings.TrimPrefix(t, "#")) {
	case strings.ToLower(typeFileAttachment):
		return parseFileAttachment(ms)
	case strings.ToLower(typeItemAttachment):
		return parseItemAttachment(ms)
	case strings.ToLower(typeRefAttachment):
		// Graph v1.0 cannot create reference attachments on messages; the
		// fake refuses them rather than pretend to deliver a link.
		return Attachment{}, badRequest("ErrorInvalidRequest", "Reference attachments are not supported on messages in v1.0.")
	}
	return Attachment{}, checkODataType(odataType, typeAttachment)
}

func parseFileAttachment(ms []member) (Attachment, *graphError) {
	var a Attachment
	var haveBytes bool
	for _, m := range ms {
		if isAnnotation(m.name) || strings.EqualFold(m.name, "@odata.type") {
			continue
		}
		var gerr *graphError
		switch key := strings.ToLower(m.name); key {
		case "name":
			a.Name, gerr = stringValue(m.value)
		case "contenttype":
			a.ContentType, gerr = stringValue(m.value)
		case "contentid":
			a.ContentID, gerr = stringValue(m.value)
		case "contentlocation":
			// Documented as "do not use" but part of the type; accepted.
			_, gerr = stringValue(m.value)
		case "isinline":
			a.IsInline, gerr = boolValue(m.value)
		case "contentbytes":
			if isNull(m.value) {
				continue
			}
			var s string
			s, gerr = stringValue(m.value)
			if gerr == nil {
				haveBytes = true
				// Edm.Binary is standard, padded base64; like .NET's
				// decoder, line breaks inside it are tolerated.
				a.Content, gerr = decodeEdmBinary(s, m.value)
			}
		case "size", "id", "lastmodifieddatetime":
			gerr = errReadOnly(m.name, typeFileAttachment)
		default:
			gerr = errUnknownProperty(m.name, typeFileAttachment)
		}
		if gerr != nil {
			return Attachment{}, gerr
		}
	}
	if a.Name == "" {
		return Attachment{}, badRequest("ErrorInvalidRequest", "The attachment name is required.")
	}
	if !haveBytes {
		return Attachment{}, badRequest("ErrorInvalidRequest", "The contentBytes property of the file attachment is required.")
	}
	return a, nil
}

func decodeEdmBinary(s string, raw json.RawMessage) ([]byte, *graphError) {
	clean := strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.Strict().DecodeString(clean)
	if err != nil {
		return nil, errLiteral(raw, "Edm.Binary")
	}
	return b, nil
}

// parseItemAttachment accepts an attached Outlook item. The fake records the
// item's JSON as the attachment content, which is enough for a test to see
// what was attached.
func parseItemAttachment(ms []member) (Attachment, *graphError) {
	a := Attachment{ContentType: "application/json"}
	var haveItem bool
	for _, m := range ms {
		if isAnnotation(m.name) || strings.EqualFold(m.name, "@odata.type") {
			continue
		}
		var gerr *graphError
		switch strings.ToLower(m.name) {
		case "name":
			a.Name, gerr = stringValue(m.value)
		case "contenttype":
			_, gerr = stringValue(m.value)
		case "isinline":
			a.IsInline, gerr = boolValue(m.value)
		case "item":
			if _, gerr = objectMembers(m.value); gerr == nil {
				haveItem = true
				a.Content = append([]byte{}, m.value...)
			}
		case "size", "id", "lastmodifieddatetime":
			gerr = errReadOnly(m.name, typeItemAttachment)
		default:
			gerr = errUnknownProperty(m.name, typeItemAttachment)
		}
		if gerr != nil {
			return Attachment{}, gerr
		}
	}
	if !haveItem {
		return Attachment{}, badRequest("ErrorInvalidRequest", "The item property of the item attachment is required.")
	}
	return a, nil
}
