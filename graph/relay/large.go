package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/graphrelay/graphrelay/envelope"
	"github.com/graphrelay/graphrelay/graph"
)

// The large-message path (graph-api.md §2), for a message whose sendMail
// request would exceed graph.MaxRequestBytes:
//
//  1. POST /users/{id}/messages creates a draft with the body, subject,
//     recipients, headers, from and replyTo, and the leading attachments
//     under 3 MB while the request stays within the limit;
//  2. each following attachment, in document order, is added with POST
//     .../attachments when under 3 MB, or through createUploadSession and
//     PUTs of graph.UploadChunkBytes, decoded from the spool file as it
//     goes, when 3 MB or more (isInline and contentId kept);
//  3. POST .../send (Content-Length: 0) sends it.
//
// Attachments keep their order, so the recipient sees what the sender
// attached in the order attached. If any step fails, the draft is deleted
// (best effort: deletion also ends open upload sessions) so no half-built
// message is left in Drafts, and the error is returned as classified: the
// queue retries the whole message, which is safe because nothing was sent.
//
// The path needs the Mail.ReadWrite application permission; without it the
// draft creation fails with 403 and a hint naming the permission and the
// alternative (delivery.large_messages: reject). /send has no
// saveToSentItems parameter, so a message sent this way is always saved to
// the mailbox's Sent Items, whatever graph.save_to_sent_items says.

// draftDeleteTimeout bounds the clean-up after a failure, which runs even
// when the delivery's own context has ended (shutdown, timeout).
const draftDeleteTimeout = 30 * time.Second

// largeSend is one run of the large-message path.
type largeSend struct {
	r       *Relay
	env     *envelope.Envelope
	c       *converted
	mailbox string // {id} in the URLs
	draftID string

	inDraft, added, uploaded, chunks int
	uploadedBytes                    int64
}

func (r *Relay) sendLarge(ctx context.Context, env *envelope.Envelope, c *converted) (sent, error) {
	ls := &largeSend{r: r, env: env, c: c, mailbox: env.Mailbox.PathID()}
	sizes := c.sizes()
	for i, n := range sizes {
		if n > graph.MaxUploadSessionBytes {
			return ls.result(graph.Receipt{}, "", ""), graph.TooLargeError("uploadSession", n,
				fmt.Sprintf("attachment %d is larger than the %d bytes Graph accepts for one attachment", i+1, graph.MaxUploadSessionBytes))
		}
	}
	draftRcpt, err := ls.createDraft(ctx, sizes)
	if err != nil {
		return ls.result(draftRcpt, draftRcpt.RequestID, ""), err
	}
	if err := ls.attachRest(ctx, sizes); err != nil {
		ls.deleteDraft(ctx)
		return ls.result(graph.Receipt{}, draftRcpt.RequestID, ""), err
	}
	rcpt, err := r.client.SendDraft(ctx, ls.mailbox, ls.draftID)
	if err != nil {
		// After a timeout or 5xx the draft may have been sent (the error
		// stays Ambiguous) and deleting it then finds nothing; otherwise
		// it would stay in Drafts.
		ls.deleteDraft(ctx)
		return ls.result(rcpt, draftRcpt.RequestID, rcpt.RequestID), err
	}
	r.log.Debug("large message: draft sent", "id", env.ID, "draft_id", ls.draftID, "request_id", rcpt.RequestID)
	return ls.result(rcpt, draftRcpt.RequestID, rcpt.RequestID), nil
}

// result is the summary of the run for the log line.
func (ls *largeSend) result(rcpt graph.Receipt, draftRequestID, sendRequestID string) sent {
	attrs := []any{"path", "draft", "request_bytes", ls.c.need, "draft_request_id", draftRequestID,
		"send_request_id", sendRequestID, "attachments_in_draft", ls.inDraft, "attachments_added", ls.added,
		"attachments_uploaded", ls.uploaded, "upload_chunks", ls.chunks, "uploaded_bytes", ls.uploadedBytes}
	if !ls.r.saveToSentItems {
		attrs = append(attrs, "saved_to_sent_items", true)
	}
	return sent{Receipt: rcpt, attrs: attrs}
}

// createDraft creates the draft with the leading small attachments that
// fit in one request.
func (ls *largeSend) createDraft(ctx context.Context, sizes []int64) (graph.Receipt, error) {
	draft := ls.c.Message
	draft.Attachments = nil
	base, err := jsonLen(&draft)
	if err != nil {
		return graph.Receipt{}, err
	}
	// `,"attachments":[` and `]` around the list, a comma between items.
	total := base + int64(len(`,"attachments":[]`))
	for i, a := range ls.c.Message.Attachments {
		if sizes[i] >= graph.MinUploadSessionBytes {
			break
		}
		meta := a
		meta.ContentBytes = []byte{}
		n, err := jsonLen(&meta)
		if err != nil {
			return graph.Receipt{}, err
		}
		if total+n+base64Len(sizes[i])+1 > graph.MaxRequestBytes {
			break
		}
		if a.ContentBytes, err = ls.c.content(i); err != nil {
			return graph.Receipt{}, err
		}
		draft.Attachments = append(draft.Attachments, a)
		total += n + base64Len(sizes[i]) + 1
	}
	ls.inDraft = len(draft.Attachments)
	id, rcpt, err := ls.r.client.CreateDraft(ctx, ls.mailbox, &draft)
	if err != nil {
		return rcpt, err
	}
	ls.draftID = id
	ls.r.log.Debug("large message: draft created", "id", ls.env.ID, "draft_id", id, "request_id", rcpt.RequestID,
		"draft_bytes", total, "attachments_in_draft", ls.inDraft)
	return rcpt, nil
}

// attachRest adds the attachments the draft could not carry, in order.
func (ls *largeSend) attachRest(ctx context.Context, sizes []int64) error {
	atts := ls.c.Message.Attachments
	for i := ls.inDraft; i < len(atts); i++ {
		var err error
		if sizes[i] >= graph.MinUploadSessionBytes {
			err = ls.upload(ctx, i, sizes[i])
		} else {
			err = ls.add(ctx, i)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// add posts one attachment under 3 MB to the draft.
func (ls *largeSend) add(ctx context.Context, i int) error {
	a := ls.c.Message.Attachments[i]
	var err error
	if a.ContentBytes, err = ls.c.content(i); err != nil {
		return err
	}
	rcpt, err := ls.r.client.AddAttachment(ctx, ls.mailbox, ls.draftID, &a)
	if err != nil {
		return err
	}
	ls.added++
	ls.r.log.Debug("large message: attachment added", "id", ls.env.ID, "draft_id", ls.draftID, "attachment", i+1,
		"bytes", len(a.ContentBytes), "request_id", rcpt.RequestID)
	return nil
}

// upload sends one attachment of 3 MB or more through an upload session,
// reading it from the spool file chunk by chunk.
func (ls *largeSend) upload(ctx context.Context, i int, size int64) error {
	a := ls.c.Message.Attachments[i]
	item := graph.AttachmentItem{AttachmentType: "file", Name: a.Name, Size: size, ContentType: a.ContentType,
		IsInline: a.IsInline, ContentID: a.ContentID}
	s, rcpt, err := ls.r.client.CreateUploadSession(ctx, ls.mailbox, ls.draftID, item)
	if err != nil {
		return err
	}
	ls.r.log.Debug("large message: upload session created", "id", ls.env.ID, "draft_id", ls.draftID, "attachment", i+1,
		"bytes", size, "inline", a.IsInline, "expires", s.Expires, "request_id", rcpt.RequestID)
	chunks, err := ls.r.client.Upload(ctx, ls.mailbox, s, ls.c.open(i), size)
	ls.chunks += chunks
	if err != nil {
		return err
	}
	ls.uploaded++
	ls.uploadedBytes += size
	ls.r.log.Debug("large message: attachment uploaded", "id", ls.env.ID, "draft_id", ls.draftID, "attachment", i+1,
		"bytes", size, "chunks", chunks)
	return nil
}

// deleteDraft removes the draft after a failure. Its own failure is only
// logged: the delivery's error is what matters to the caller.
func (ls *largeSend) deleteDraft(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), draftDeleteTimeout)
	defer cancel()
	rcpt, err := ls.r.client.DeleteDraft(dctx, ls.mailbox, ls.draftID)
	var ge *graph.Error
	switch {
	case errors.As(err, &ge) && ge.Status == http.StatusNotFound:
		ls.r.log.Debug("large message: the draft is gone (sent or already deleted)", "id", ls.env.ID, "draft_id", ls.draftID)
	case err != nil:
		ls.r.log.Warn("large message: could not delete the draft after a failure; delete it from the mailbox's Drafts folder",
			"id", ls.env.ID, "mailbox", ls.env.Mailbox.Address, "draft_id", ls.draftID, "err", err)
	default:
		ls.r.log.Debug("large message: draft deleted after a failure", "id", ls.env.ID, "draft_id", ls.draftID, "request_id", rcpt.RequestID)
	}
}

// jsonLen is the length of v's JSON.
func jsonLen(v any) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode draft: %w", err)
	}
	return int64(len(b)), nil
}
