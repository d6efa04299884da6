package doctor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
)

var discardLog = slog.New(slog.DiscardHandler)

// Permissions graphrelay uses (graph-api.md §1.1 and §2).
const (
	roleMailSend      = "Mail.Send"
	roleMailReadWrite = "Mail.ReadWrite"
)

// checkToken obtains an app-only token exactly as the daemon does. It
// returns the raw token only for checkRoles to decode; it is never printed.
func checkToken(ctx context.Context, g config.Graph, hc *http.Client) (Result, *graph.Credentials, string) {
	res := Result{Name: "token"}
	creds, err := graph.LoadCredentials(ctx, g, hc)
	if err != nil {
		res.Status, res.Detail = Fail, err.Error()
		res.Fix = "see the credential step; the token source cannot be built from this configuration"
		return res, nil, ""
	}
	tokenURL := creds.Cloud.TokenURL(g.TenantID)
	tok, err := creds.NewTokens().Token()
	if err != nil {
		e := graph.TokenError(err)
		res.Status, res.Fix = Fail, e.Hint()
		switch {
		case e.Code != "" && e.Message != "":
			res.Detail = fmt.Sprintf("%s refused (HTTP %d): %s: %s", tokenURL, e.Status, e.Code, e.Message)
		default:
			res.Detail = err.Error()
		}
		switch {
		case creds.Kind == config.CredentialManagedIdentity && strings.Contains(err.Error(), "azcmagent"):
			// The Arc agent answered its challenge, but the key file it
			// named could not be read: only root and the himds group may.
			res.Fix = "the Azure Arc agent's key file in /var/opt/azcmagent/tokens cannot be read by " + currentUser() + ": add graphrelay's user to the himds group (usermod -aG himds graphrelay) and restart graphrelay"
		case creds.Kind == config.CredentialManagedIdentity && e.Status == 0:
			res.Fix = "the managed identity endpoint (" + graph.ManagedIdentityHost() + ") did not answer: run graphrelay on an Azure VM, scale set, App Service, Functions, Container Apps, Service Fabric or Arc-enabled server with a managed identity enabled (or set graph.imds_endpoint, or graph.federated_token_file on AKS)"
		}
		return res, creds, ""
	}
	via := creds.Kind
	if creds.Kind != config.CredentialManagedIdentity {
		via += " at " + tokenURL
	}
	res.Status = OK
	res.Detail = fmt.Sprintf("obtained an app-only token for %s (%s), valid for %d minutes", creds.Cloud.Scope(), via,
		int(time.Until(tok.Expiry).Round(time.Minute).Minutes()))
	return res, creds, tok.AccessToken
}

// checkRoles reads the application permissions from the token. It reports
// whether Mail.Send is granted, without which no mailbox can be probed.
func checkRoles(token string, cfg *config.Config) (Result, bool) {
	res := Result{Name: "permissions"}
	claims, err := graph.ParseTokenClaims(token)
	if err != nil {
		// An opaque token is allowed by the protocol; Graph judges it.
		res.Status, res.Detail = Warn, "cannot read the token's claims: "+err.Error()
		res.Fix = "the mailbox steps below still show whether Graph accepts the token"
		return res, true
	}
	managed := cfg.Graph.CredentialKind() == config.CredentialManagedIdentity
	who := fmt.Sprintf("app %s in tenant %s", orNone(claims.AppID), orNone(claims.TenantID))
	grantFix := "in the app registration: API permissions > Add a permission > Microsoft Graph > Application permissions > Mail.Send, then 'Grant admin consent'; a Delegated Mail.Send does not count (docs/tenant-setup.md)"
	if managed {
		grantFix = "assign the Microsoft Graph app role Mail.Send to the managed identity's service principal with New-MgServicePrincipalAppRoleAssignment (docs/tenant-setup.md); there is no portal button for it"
	}
	switch {
	case len(claims.Roles) == 0 && managed:
		res.Status, res.Fix = Fail, grantFix
		res.Detail = "the token has no application permissions (" + who + "): the managed identity has no Microsoft Graph app role assignment"
		return res, false
	case len(claims.Roles) == 0:
		res.Status, res.Fix = Fail, grantFix
		res.Detail = "the token has no application permissions: you granted Delegated permissions or did not grant admin consent (" + who + ")"
		return res, false
	}
	roles := append([]string(nil), claims.Roles...)
	sort.Strings(roles)
	res.Detail = fmt.Sprintf("roles %s (%s)", strings.Join(roles, ", "), who)
	if !claims.HasRole(roleMailSend) {
		res.Status, res.Fix = Fail, grantFix
		res.Detail += ": Mail.Send is missing"
		return res, false
	}
	large := cfg.Delivery.LargeMessages == config.LargeUpload
	switch {
	case large && !claims.HasRole(roleMailReadWrite):
		// WARN, not FAIL: every message up to about 3 MB goes out, and
		// whether to give the app read access to the mailboxes for the rest
		// is the admin's trade-off. Either answer removes the warning.
		res.Status = Warn
		res.Detail += ": Mail.ReadWrite is missing, so messages too large for one sendMail request (about 3 MB) will fail permanently (delivery.large_messages is upload)"
		res.Fix = "grant Mail.ReadWrite (Application) with admin consent for large messages, or set delivery.large_messages: reject so they are refused at SMTP time (552) instead"
		if managed {
			res.Fix = "assign the Mail.ReadWrite app role to the managed identity for large messages, or set delivery.large_messages: reject so they are refused at SMTP time (552) instead"
		}
	case !large && claims.HasRole(roleMailReadWrite):
		res.Status = Warn
		res.Detail += ": Mail.ReadWrite is granted but unused (delivery.large_messages is reject), and it lets the app read and change the mail of every mailbox the access policy allows"
		res.Fix = "remove the Mail.ReadWrite application permission from the app, or set delivery.large_messages: upload to use it"
	default:
		res.Status = OK
	}
	return res, true
}
