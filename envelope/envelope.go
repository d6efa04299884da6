// Package envelope describes one accepted message apart from its bytes: who
// sent it, from where, to whom, and which mailbox it leaves as. It is the
// vocabulary that smtpd, policy, the queue and graph share, so that none of
// them has to import another.
package envelope

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// Envelope is the SMTP envelope plus the policy decision for one message.
type Envelope struct {
	ID         string   `json:"id"`
	Listener   string   `json:"listener"`
	ClientIP   string   `json:"client_ip"`
	Helo       string   `json:"helo"`
	TLS        bool     `json:"tls"`
	AuthUser   string   `json:"auth_user,omitempty"`
	From       string   `json:"from"` // MAIL FROM; "" for the null sender <>
	Recipients []string `json:"recipients"`
	Mailbox    Mailbox  `json:"mailbox"`
	// Rule names the policy rule that chose Mailbox.
	Rule string `json:"rule,omitempty"`
	// FromName is the display name to send with the mailbox address; ""
	// lets Graph use the mailbox's own name.
	FromName string `json:"from_name,omitempty"`
	// ReplyTo is set when the From was rewritten: the original sender,
	// added as Reply-To unless the message already has one.
	ReplyTo    string    `json:"reply_to,omitempty"`
	Format     string    `json:"format"`
	ReceivedAt time.Time `json:"received_at"`
	Size       int64     `json:"size"`
	// QualifyDomain is the domain given to header addresses written
	// without one ("From: root"): smtp.qualify_domain, else the envelope
	// sender's domain; "" when there is none.
	QualifyDomain string `json:"qualify_domain,omitempty"`
}

// Formats for Envelope.Format.
const (
	FormatJSON = "json" // convert to Graph's message resource
	FormatMIME = "mime" // pass the original MIME through, base64-encoded
)

// Mailbox is a shared mailbox that graphrelay may send as.
type Mailbox struct {
	Address string `json:"address"`
	// ID is the mailbox's Entra object id, when configured.
	ID string `json:"id,omitempty"`
}

// PathID is the {id} used in /users/{id}/sendMail: the object id when
// known, because it survives renames, else the address.
func (m Mailbox) PathID() string {
	if m.ID != "" {
		return m.ID
	}
	return m.Address
}

var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// NewID returns a queue id: 48 bits of milliseconds then 64 random bits, in
// Crockford base32, so ids sort by arrival time in listings and file names.
func NewID() string {
	var b [14]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(time.Now().UnixMilli())<<16)
	rand.Read(b[6:14])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
