package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
	"github.com/graphrelay/graphrelay/graph/convert"
)

// converted is a message converted for Graph, whose large attachments may
// still be in the spool file.
type converted struct {
	*convert.Result
	raw      io.ReaderAt
	deferred map[int]convert.Deferred // by attachment index
	// need is the size of the sendMail request that would carry the whole
	// message, computed without building it.
	need int64
	// body is that request, encoded, when the message is small and has no
	// deferred attachment: encoding it once gives its size and what to
	// send, where sizing it and then sending it encoded it twice (0.6 %
	// of the daemon's CPU and a request's worth of garbage per message).
	body []byte
}

// encodeOnceMax is the largest message whose sendMail request is encoded
// whole just to learn its size: a larger one may be bound for the upload
// path, and encoding it would hold its base64 in memory for nothing.
const encodeOnceMax = 1 << 20

// convertMessage converts raw and applies the policy's sender.
func (r *Relay) convertMessage(env *envelope.Envelope, raw io.ReaderAt, size int64) (*converted, error) {
	res, err := convert.Convert(io.NewSectionReader(raw, 0, size),
		convert.Envelope{From: env.From, Recipients: env.Recipients, QualifyDomain: env.QualifyDomain},
		convert.Options{DeferAttachments: r.deferBytes()})
	if err != nil {
		return nil, fmt.Errorf("convert message %s: %w", env.ID, err)
	}
	applyFrom(&res.Message, env)
	c := &converted{Result: res, raw: raw, deferred: make(map[int]convert.Deferred, len(res.Deferred))}
	for _, d := range res.Deferred {
		c.deferred[d.Index] = d
	}
	req := graph.SendMailRequest{Message: res.Message, SaveToSentItems: r.saveOption()}
	if len(c.deferred) == 0 && size <= encodeOnceMax {
		if c.body, err = json.Marshal(req); err != nil {
			return nil, fmt.Errorf("encode sendMail request: %w", err)
		}
		c.need = int64(len(c.body))
		return c, nil
	}
	c.need, err = requestBytes(req, c.sizes())
	return c, err
}

func (r *Relay) saveOption() *bool {
	if r.saveToSentItems {
		return nil
	}
	no := false
	return &no
}

// sizes returns the decoded size of every attachment.
func (c *converted) sizes() []int64 {
	out := make([]int64, len(c.Message.Attachments))
	for i, a := range c.Message.Attachments {
		out[i] = int64(len(a.ContentBytes))
		if d, ok := c.deferred[i]; ok {
			out[i] = d.Size
		}
	}
	return out
}

// content returns attachment i's bytes, reading a deferred one from the
// spool file.
func (c *converted) content(i int) ([]byte, error) {
	if d, ok := c.deferred[i]; ok {
		return d.Bytes(c.raw)
	}
	return c.Message.Attachments[i].ContentBytes, nil
}

// open returns a reader of attachment i's bytes.
func (c *converted) open(i int) io.Reader {
	if d, ok := c.deferred[i]; ok {
		return d.Open(c.raw)
	}
	return bytes.NewReader(c.Message.Attachments[i].ContentBytes)
}

// requestBytes is the exact length of req marshalled with attachments of
// the given decoded sizes: encoding/json writes []byte as padded standard
// base64 in quotes, which needs no escaping, so each attachment adds its
// base64 length to the request marshalled with empty contents.
func requestBytes(req graph.SendMailRequest, sizes []int64) (int64, error) {
	atts := make([]graph.Attachment, len(req.Message.Attachments))
	copy(atts, req.Message.Attachments)
	for i := range atts {
		atts[i].ContentBytes = []byte{}
	}
	req.Message.Attachments = atts
	b, err := json.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("encode sendMail request: %w", err)
	}
	n := int64(len(b))
	for _, s := range sizes {
		n += base64Len(s)
	}
	return n, nil
}

// base64Len is the length of the padded standard base64 of n bytes.
func base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// sendJSON converts the message and sends it with sendMail, or through the
// large-message path when one request cannot carry it.
func (r *Relay) sendJSON(ctx context.Context, env *envelope.Envelope, raw io.ReaderAt, size int64) (sent, error) {
	c, err := r.convertMessage(env, raw, size)
	if err != nil {
		return sent{}, err
	}
	for _, w := range c.Warnings {
		r.log.Info("conversion warning", "id", env.ID, "warning", w)
	}
	if c.need > graph.MaxRequestBytes {
		if r.opts.LargeMessages == config.LargeReject {
			return sent{attrs: []any{"path", "rejected", "request_bytes", c.need}}, rejectLarge(c.need)
		}
		return r.sendLarge(ctx, env, c)
	}
	for i := range c.deferred {
		if c.Message.Attachments[i].ContentBytes, err = c.content(i); err != nil {
			return sent{}, fmt.Errorf("message %s: %w", env.ID, err)
		}
	}
	var rcpt graph.Receipt
	if c.body != nil {
		rcpt, err = r.client.SendMailBody(ctx, env.Mailbox.PathID(), c.body)
	} else {
		req := &graph.SendMailRequest{Message: c.Message, SaveToSentItems: r.saveOption()}
		rcpt, err = r.client.SendMail(ctx, env.Mailbox.PathID(), req)
	}
	return sent{Receipt: rcpt, attrs: []any{"path", "sendMail", "request_bytes", c.need}}, err
}

// rejectLarge is the refusal under delivery.large_messages: reject. The
// SMTP layer answers it with 552 5.3.4; the limit is named here, for the
// log.
func rejectLarge(need int64) error {
	return graph.TooLargeError("sendMail", need,
		fmt.Sprintf("delivery.large_messages is reject, so messages over the %s are refused with 552; "+
			"set delivery.large_messages: upload (needs the Mail.ReadWrite application permission) to send them as a draft with upload sessions",
			graph.RequestLimitText))
}
