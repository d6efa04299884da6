// Package relay turns an accepted message into Microsoft Graph calls, as
// the mailbox the policy chose. A message goes one of three ways:
//
//   - format json, request within Graph's 4,000,000-byte limit: converted
//     with graph/convert and sent with one sendMail request;
//   - format json, larger: the large-message path (large.go) — a draft,
//     its attachments, an upload session per attachment of 3 MB or more,
//     then /send — or, with delivery.large_messages: reject, a refusal that
//     the SMTP layer answers with 552 5.3.4;
//   - format mime: the original MIME with a rewritten header (see
//     convert.PrepareMIME), base64-encoded, in one sendMail request; there
//     is no large path for MIME.
//
// Memory: the message stays in the spool file the caller passes. Convert
// reads it once into memory, but leaves the content of large attachments
// in the file (convert.Options.DeferAttachments); they are decoded from the
// file chunk by chunk while they are uploaded, so relaying a 30 MB message
// holds one copy of it only while it is converted, and a few MB after.
package relay

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// DefaultDeferBytes is the encoded size from which an attachment's content
// stays in the spool file until it is sent. Smaller ones are decoded in
// memory, where reading them back would cost more than it saves.
const DefaultDeferBytes = 256 << 10

// Options tune a Relay. The zero value is the default configuration.
type Options struct {
	// LargeMessages is config.LargeUpload (the default: the draft and
	// upload-session path, which needs Mail.ReadWrite) or
	// config.LargeReject (refuse what needs it).
	LargeMessages string
	// DeferAttachmentBytes is the encoded size from which attachment
	// content is read from the spool file only when it is sent; zero means
	// DefaultDeferBytes, and a negative value decodes every attachment into
	// memory (for measuring what deferral saves).
	DeferAttachmentBytes int64
	// QuietSuccess is set when the caller logs every delivery itself (the
	// queue's and the cluster's "delivered" line, which carries the same
	// ids): the "graph accepted message" line then goes to debug level,
	// one log write fewer per message. Failures are logged as before.
	QuietSuccess bool
}

// Relay turns an accepted message into Graph calls.
type Relay struct {
	client          *graph.Client
	saveToSentItems bool
	log             *slog.Logger
	opts            Options
}

// New returns a Relay that sends through client. opts, when given, tune it
// (only the first is used).
func New(client *graph.Client, saveToSentItems bool, log *slog.Logger, opts ...Options) *Relay {
	r := &Relay{client: client, saveToSentItems: saveToSentItems, log: log}
	if len(opts) > 0 {
		r.opts = opts[0]
	}
	if r.opts.LargeMessages == "" {
		r.opts.LargeMessages = config.LargeUpload
	}
	return r
}

// deferBytes is the convert.Options.DeferAttachments value.
func (r *Relay) deferBytes() int64 {
	switch d := r.opts.DeferAttachmentBytes; {
	case d == 0:
		return DefaultDeferBytes
	case d < 0:
		return 0
	default:
		return d
	}
}

// sent is the outcome of one delivery path: Graph's receipt for the request
// that sent the message, and what the summary line should add.
type sent struct {
	graph.Receipt
	attrs []any
}

// Send relays raw (size bytes, CRLF line endings, as spooled) as
// env.Mailbox, in env.Format. The error, if any, is a *graph.Error or a
// conversion error whose methods tell the SMTP layer how to answer.
func (r *Relay) Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error) {
	start := time.Now()
	ctx = graph.WithMessageID(ctx, env.ID)
	var out sent
	var err error
	if env.Format == envelope.FormatMIME {
		out, err = r.sendMIME(ctx, env, raw, size)
	} else {
		out, err = r.sendJSON(ctx, env, raw, size)
	}
	attrs := []any{"id", env.ID, "mailbox", env.Mailbox.Address, "format", formatOf(env), "size", size,
		"request_id", out.RequestID, "client_request_id", out.ClientRequestID}
	attrs = append(attrs, out.attrs...)
	attrs = append(attrs, "elapsed_ms", float64(time.Since(start).Microseconds())/1000)
	if err != nil {
		if e, ok := err.(*graph.Error); ok {
			attrs = append(attrs, "op", e.Op, "class", e.Class.String(), "status", e.Status, "code", e.Code, "ambiguous", e.Ambiguous)
			if e.RequestID != "" && e.RequestID != out.RequestID {
				attrs = append(attrs, "failed_request_id", e.RequestID)
			}
			if h := e.Hint(); h != "" {
				attrs = append(attrs, "hint", h)
			}
		}
		r.log.Warn("graph send failed", append(attrs, "err", err)...)
		return out.Receipt, err
	}
	level := slog.LevelInfo
	if r.opts.QuietSuccess {
		level = slog.LevelDebug
	}
	r.log.Log(ctx, level, "graph accepted message", attrs...)
	return out.Receipt, nil
}

func formatOf(env *envelope.Envelope) string {
	if env.Format == envelope.FormatMIME {
		return envelope.FormatMIME
	}
	return envelope.FormatJSON
}

// applyFrom sets the sender the policy decided. Graph sends as the mailbox
// in the URL; from is set only to carry the display name, always with the
// mailbox's own address, so Graph never sees a From it would refuse with
// ErrorSendAsDenied, and the name is cleaned of at signs and their
// lookalikes for the same reason. A rewritten sender's original address
// becomes the Reply-To unless the message already has one, so replies
// still reach it; one that is not a mailbox (a spool written by an older
// version) is left out rather than sent broken.
func applyFrom(m *graph.Message, env *envelope.Envelope) {
	if name := mailhdr.CleanDisplayName(env.FromName); name != "" {
		m.From = &graph.Recipient{EmailAddress: graph.EmailAddress{Address: env.Mailbox.Address, Name: name}}
	} else {
		m.From = nil
	}
	if _, err := mailhdr.Canonical(env.ReplyTo); err == nil && len(m.ReplyTo) == 0 {
		m.ReplyTo = []graph.Recipient{{EmailAddress: graph.EmailAddress{Address: env.ReplyTo}}}
	}
}
