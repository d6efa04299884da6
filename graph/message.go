package graph

// Message is the subset of Graph's message resource that graphrelay sends.
// Field names follow the camelCase that the Graph documentation and SDKs use;
// Graph matches them case-insensitively, and the fake does too.
type Message struct {
	Subject                string      `json:"subject"`
	Body                   ItemBody    `json:"body"`
	From                   *Recipient  `json:"from,omitempty"`
	ToRecipients           []Recipient `json:"toRecipients,omitempty"`
	CcRecipients           []Recipient `json:"ccRecipients,omitempty"`
	BccRecipients          []Recipient `json:"bccRecipients,omitempty"`
	ReplyTo                []Recipient `json:"replyTo,omitempty"`
	Importance             string      `json:"importance,omitempty"`
	InternetMessageHeaders []Header    `json:"internetMessageHeaders,omitempty"`
	// IsReadReceiptRequested is omitted when false because false is Graph's
	// default and an absent field keeps the request small and readable.
	IsReadReceiptRequested bool `json:"isReadReceiptRequested,omitempty"`
	// SingleValueExtendedProperties carries standard headers that
	// internetMessageHeaders refuses (In-Reply-To, References), as MAPI
	// properties.
	SingleValueExtendedProperties []ExtendedProperty `json:"singleValueExtendedProperties,omitempty"`
	Attachments                   []Attachment       `json:"attachments,omitempty"`
}

// ItemBody is Graph's itemBody. ContentType is "Text" or "HTML".
type ItemBody struct {
	ContentType string `json:"contentType"`
	Content     string `json:"content"`
}

// Body content types as the Graph documentation spells them.
const (
	BodyText = "Text"
	BodyHTML = "HTML"
)

// Recipient is Graph's recipient resource.
type Recipient struct {
	EmailAddress EmailAddress `json:"emailAddress"`
}

// EmailAddress is Graph's emailAddress resource.
type EmailAddress struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
}

// Header is one entry of internetMessageHeaders. Graph accepts only names
// that start with "x-" and at most five of them per message.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ExtendedProperty is Graph's singleValueLegacyExtendedProperty.
type ExtendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// FileAttachmentType is the @odata.type Graph requires on every file attachment.
const FileAttachmentType = "#microsoft.graph.fileAttachment"

// Attachment is Graph's fileAttachment. ContentBytes is marshalled by
// encoding/json as standard base64, which is what Edm.Binary expects.
type Attachment struct {
	ODataType    string `json:"@odata.type"`
	Name         string `json:"name"`
	ContentType  string `json:"contentType,omitempty"`
	ContentBytes []byte `json:"contentBytes"`
	IsInline     bool   `json:"isInline,omitempty"`
	ContentID    string `json:"contentId,omitempty"`
}

// SendMailRequest is the JSON body of POST /users/{id}/sendMail.
type SendMailRequest struct {
	Message Message `json:"message"`
	// SaveToSentItems is a pointer so that the default (true) is omitted, as
	// the documentation asks: "Specify it only if the parameter is false".
	SaveToSentItems *bool `json:"saveToSentItems,omitempty"`
}
