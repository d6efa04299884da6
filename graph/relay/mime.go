package relay

import (
	"context"
	"fmt"
	"io"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/convert"
)

// prepareMIME rewrites the header of a passthrough message by the rule in
// convert.PrepareMIME, reading only the header from the spool file.
func prepareMIME(env *envelope.Envelope, raw io.ReaderAt, size int64) (*convert.MIME, error) {
	m, err := convert.PrepareMIME(raw, size, convert.MIMEEnvelope{
		Mailbox: env.Mailbox.Address, FromName: env.FromName, ReplyTo: env.ReplyTo, Recipients: env.Recipients,
		QualifyDomain: env.QualifyDomain})
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", env.ID, err)
	}
	return m, nil
}

// mimeTooLarge refuses a passthrough message whose base64 would exceed the
// request limit. MIME has no large path: an upload session carries one
// attachment of a draft, not a message's MIME.
func mimeTooLarge(need int64) error {
	return graph.TooLargeError("sendMail", need,
		fmt.Sprintf("MIME passthrough sends the whole message base64-encoded in one request, so it is limited by the %s "+
			"(about 3 MB of message) and has no upload path; send such mail with format json", graph.RequestLimitText))
}

// sendMIME sends the original message with its rewritten header.
func (r *Relay) sendMIME(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (sent, error) {
	m, err := prepareMIME(env, raw, size)
	if err != nil {
		return sent{}, err
	}
	need := base64Len(m.Size())
	attrs := []any{"path", "mime", "request_bytes", need, "rcpts_removed", m.Removed, "bcc_added", m.AddedBcc, "bcc_dropped", m.DroppedBcc}
	if need > graph.MaxRequestBytes {
		return sent{attrs: attrs}, mimeTooLarge(need)
	}
	msg, err := m.Bytes(raw)
	if err != nil {
		return sent{attrs: attrs}, fmt.Errorf("message %s: %w", env.ID, err)
	}
	// Graph saves MIME submissions to Sent Items in any case: sendMail
	// has no saveToSentItems parameter in MIME form.
	rcpt, err := r.client.SendMIME(ctx, env.Mailbox.PathID(), msg)
	return sent{Receipt: rcpt, attrs: attrs}, err
}
