package graph

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// refusedTokens fails every Token call as Entra refuses an unregistered
// certificate: HTTP 401 with AADSTS700027.
type refusedTokens struct{ calls *int }

func (r refusedTokens) Token() (*oauth2.Token, error) {
	*r.calls++
	body := `{"error":"invalid_client","error_description":"AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.","error_codes":[700027]}`
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}}, Body: []byte(body)}
}

// A token Entra refused is not a token Graph rejected: no "graph rejected
// the access token" and no second token request, and the AADSTS code
// appears once in the error.
func TestRefusedTokenIsNotRejectedByGraph(t *testing.T) {
	var logs bytes.Buffer
	calls, sources := 0, 0
	c := NewClient("https://graph.invalid", http.DefaultClient, func() oauth2.TokenSource {
		sources++
		return refusedTokens{&calls}
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	_, err := c.SendMIME(context.Background(), "alerts@company.com", []byte("Subject: x\r\n\r\nbody\r\n"))
	e, ok := err.(*Error)
	if !ok || e.Op != "token" || e.Code != "AADSTS700027" {
		t.Fatalf("err = %v (%T)", err, err)
	}
	if strings.Contains(logs.String(), "rejected the access token") {
		t.Errorf("logged a Graph rejection although no token was obtained:\n%s", logs.String())
	}
	if calls != 1 || sources != 1 {
		t.Errorf("%d token requests from %d sources, want 1 from 1", calls, sources)
	}
	if n := strings.Count(err.Error(), "AADSTS700027"); n != 1 {
		t.Errorf("the code appears %d times in %q", n, err.Error())
	}
	if TokenError(err).Message == "" || strings.HasPrefix(TokenError(err).Message, "AADSTS") {
		t.Errorf("message %q", TokenError(err).Message)
	}
}
