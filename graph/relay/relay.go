// Package relay turns an accepted message into Microsoft Graph calls: it
// converts the MIME message with graph/convert and sends it with the graph
// client as the mailbox the policy chose.
package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/convert"
)

// Relay turns an accepted message into Graph calls: it converts the MIME
// message to Graph's message resource and sends it as the decided mailbox.
type Relay struct {
	client          *graph.Client
	saveToSentItems bool
	log             *slog.Logger
}

// New returns a Relay that sends through client.
func New(client *graph.Client, saveToSentItems bool, log *slog.Logger) *Relay {
	return &Relay{client: client, saveToSentItems: saveToSentItems, log: log}
}

// Send converts raw (size bytes, CRLF line endings) and sends it as
// env.Mailbox. The error, if any, is an *Error or a conversion error whose
// methods say how to answer the SMTP client.
func (r *Relay) Send(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (graph.Receipt, error) {
	start := time.Now()
	res, err := convert.Convert(io.NewSectionReader(raw, 0, size),
		convert.Envelope{From: env.From, Recipients: env.Recipients}, convert.Options{})
	if err != nil {
		return graph.Receipt{}, fmt.Errorf("convert message %s: %w", env.ID, err)
	}
	for _, w := range res.Warnings {
		r.log.Info("conversion warning", "id", env.ID, "warning", w)
	}
	applyFrom(&res.Message, env)
	req := &graph.SendMailRequest{Message: res.Message}
	if !r.saveToSentItems {
		no := false
		req.SaveToSentItems = &no
	}
	rcpt, err := r.client.SendMail(ctx, env.Mailbox.PathID(), req)
	attrs := []any{"id", env.ID, "mailbox", env.Mailbox.Address, "request_id", rcpt.RequestID,
		"client_request_id", rcpt.ClientRequestID, "elapsed_ms", float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		if e, ok := err.(*graph.Error); ok {
			attrs = append(attrs, "class", e.Class.String(), "status", e.Status, "code", e.Code, "ambiguous", e.Ambiguous)
		}
		r.log.Warn("graph send failed", append(attrs, "err", err)...)
		return rcpt, err
	}
	r.log.Info("graph accepted message", attrs...)
	return rcpt, nil
}

// applyFrom sets the sender the policy decided. Graph sends as the mailbox
// in the URL; from is set only to carry the display name, always with the
// mailbox's own address, so Graph never sees a From it would refuse with
// ErrorSendAsDenied. A rewritten sender's original address becomes the
// Reply-To unless the message already has one, so replies still reach it.
func applyFrom(m *graph.Message, env *envelope.Envelope) {
	if env.FromName != "" {
		m.From = &graph.Recipient{EmailAddress: graph.EmailAddress{Address: env.Mailbox.Address, Name: env.FromName}}
	} else {
		m.From = nil
	}
	if env.ReplyTo != "" && len(m.ReplyTo) == 0 {
		m.ReplyTo = []graph.Recipient{{EmailAddress: graph.EmailAddress{Address: env.ReplyTo}}}
	}
}
