package graphtest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// graphrelay check probes mailbox access with a recipient-less sendMail
// (graph.Client.ProbeAccess). That is only meaningful if the fake, like
// Graph, authorises the mailbox before it validates the body, so these
// tests pin the order: a different order would turn every denied mailbox
// into a false "granted".

const probeBody = `{"message":{"subject":"probe","body":{"contentType":"Text","content":"x"}},"saveToSentItems":false}`

func TestProbeOrderPolicyBeforeBody(t *testing.T) {
	s := New(t, Config{
		Mailboxes:    []Mailbox{{Address: "scans@contoso.com"}, {Address: "alerts@contoso.com"}},
		AccessPolicy: []string{"scans@contoso.com"},
	})
	tok := s.MintAccessToken([]string{"Mail.Send"}, time.Hour)

	g := sendJSON(t, s, tok, "scans@contoso.com", probeBody)
	code, msg := g.errorCode(t)
	if g.status != http.StatusBadRequest || code != "ErrorInvalidRecipients" ||
		msg != invalidRecipientsMessage+", A message can't be sent because it contains no recipients." {
		t.Errorf("granted mailbox: %d %s %q", g.status, code, msg)
	}

	// Denied by the policy, whatever the body: a body Graph would refuse
	// on its own (here not even JSON) must not be what the client sees.
	for _, body := range []string{probeBody, `not json`, `{"message":{"toRecipients":[{}]}}`} {
		g = sendJSON(t, s, tok, "alerts@contoso.com", body)
		code, msg = g.errorCode(t)
		if g.status != http.StatusForbidden || code != "ErrorAccessDenied" || msg != accessPolicyMessage {
			t.Errorf("denied mailbox with body %q: %d %s %q", body, g.status, code, msg)
		}
	}

	// The unknown mailbox is resolved before the body too.
	g = sendJSON(t, s, tok, "nobody@contoso.com", probeBody)
	if code, _ = g.errorCode(t); g.status != http.StatusNotFound || code != "ErrorInvalidUser" {
		t.Errorf("unknown mailbox: %d %s", g.status, code)
	}
	if ds := s.Deliveries(); len(ds) != 0 {
		t.Fatalf("a recipient-less message was delivered: %+v", ds)
	}
}

// The role check comes first of all: without Mail.Send every mailbox,
// allowed or not, answers the same "Access is denied", which is why a probe
// cannot judge the policy before the token has the role.
func TestProbeOrderRoleBeforePolicy(t *testing.T) {
	s := New(t, Config{AccessPolicy: []string{"scans@contoso.com"}})
	tok := s.MintAccessToken(nil, time.Hour)
	for _, mb := range []string{"scans@contoso.com", "alerts@contoso.com"} {
		g := sendJSON(t, s, tok, mb, probeBody)
		code, msg := g.errorCode(t)
		if g.status != http.StatusForbidden || code != "ErrorAccessDenied" || msg != accessDeniedMessage {
			t.Errorf("%s: %d %s %q", mb, g.status, code, msg)
		}
		if strings.Contains(strings.ToLower(msg), "odata") {
			t.Errorf("%s: a missing role looks like a policy denial: %q", mb, msg)
		}
	}
}
