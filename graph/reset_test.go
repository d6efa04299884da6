package graph

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/graphrelay/graphrelay/graph/graphtest"
)

// A connection that breaks after sendMail was sent is ambiguous: the fake
// accepted the message and then reset the connection, so the error must
// say Graph may have it and carry the request's client-request-id. The
// same reset before the fake took the message, and a reset of a draft
// step, are not ambiguous.
func TestResetAfterSendIsAmbiguous(t *testing.T) {
	fake := graphtest.New(t, graphtest.Config{})
	c := probeClient(fake, []string{"Mail.Send"})
	const mb = "scans@contoso.com"
	msg := &SendMailRequest{Message: Message{Subject: "reset", Body: ItemBody{ContentType: BodyText, Content: "body"},
		ToRecipients: []Recipient{{EmailAddress: EmailAddress{Address: "alice@contoso.com"}}}}}

	fake.FailGraph(graphtest.Fault{Reset: true, AfterAccept: true})
	rcpt, err := c.SendMail(context.Background(), mb, msg)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("SendMail after a reset = %v, want a *graph.Error", err)
	}
	ds := fake.Deliveries()
	if len(ds) != 1 {
		t.Fatalf("the fake recorded %d deliveries, want the one it accepted before the reset (err %v, requests %+v)", len(ds), err, fake.GraphRequests())
	}
	if !e.Ambiguous || e.Status != 0 || !e.Temporary() {
		t.Errorf("reset after acceptance: ambiguous=%v status=%d class=%v, want ambiguous transient without status", e.Ambiguous, e.Status, e.Class)
	}
	if e.ClientRequestID == "" || e.ClientRequestID != ds[0].ClientRequestID || rcpt.ClientRequestID != ds[0].ClientRequestID {
		t.Errorf("client-request-id: error %q, receipt %q, Graph saw %q", e.ClientRequestID, rcpt.ClientRequestID, ds[0].ClientRequestID)
	}
	if !strings.Contains(e.Hint(), "Graph may have accepted it") {
		t.Errorf("hint %q does not tell the admin Graph may have accepted the message", e.Hint())
	}

	// The reset is ambiguous because the request was sent, not because
	// Graph accepted it: the client cannot tell the two apart.
	fake.FailGraph(graphtest.Fault{Reset: true})
	_, err = c.SendMail(context.Background(), mb, msg)
	if !errors.As(err, &e) || !e.Ambiguous {
		t.Errorf("reset after the request was sent = %v, want ambiguous", err)
	}
	if n := len(fake.Deliveries()); n != 1 {
		t.Errorf("deliveries = %d after a reset before acceptance, want still 1", n)
	}

	fake.FailGraph(graphtest.Fault{Reset: true})
	_, _, err = c.CreateDraft(context.Background(), mb, &msg.Message)
	if !errors.As(err, &e) || e.Ambiguous {
		t.Errorf("reset of createMessage = %v ambiguous=%v; a draft cannot deliver anything", err, e != nil && e.Ambiguous)
	}
}
