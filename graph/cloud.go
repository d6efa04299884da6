package graph

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Cloud names the Entra ID authority and the Graph endpoint of one Microsoft
// cloud. Tokens are not interchangeable between clouds, so the two always
// travel together.
type Cloud struct {
	Name     string
	LoginURL string // authority host, without a trailing slash
	GraphURL string // Graph base URL, without a trailing slash or version

	// scope is the OAuth2 scope pinned by WithOverrides or WithScope. Empty
	// means GraphURL+"/.default", which is also what a Cloud literal built
	// by hand (for example in another package's test) gets.
	scope string
}

// defaultScopeSuffix turns a resource ID into the scope that the client
// credentials grant requires: the app's statically granted permissions on
// that single resource.
const defaultScopeSuffix = "/.default"

// The presets follow the national cloud table in graph-api.md §5. M365 GCC
// (not High) uses the worldwide endpoints, hence the "gcc" alias of global.
var (
	cloudGlobal = Cloud{Name: "global", LoginURL: "https://login.microsoftonline.com", GraphURL: "https://graph.microsoft.com"}
	cloudUSGov  = Cloud{Name: "usgov", LoginURL: "https://login.microsoftonline.us", GraphURL: "https://graph.microsoft.us"}
	cloudDoD    = Cloud{Name: "dod", LoginURL: "https://login.microsoftonline.us", GraphURL: "https://dod-graph.microsoft.us"}
	// China's current authority; the legacy login.chinacloudapi.cn still
	// works and can be set through WithOverrides if a tenant needs it.
	cloudChina = Cloud{Name: "china", LoginURL: "https://login.partner.microsoftonline.cn", GraphURL: "https://microsoftgraph.chinacloudapi.cn"}
)

// cloudNames lists the accepted names in the order error messages show them.
var cloudNames = []string{"global", "gcc", "usgov", "dod", "china"}

// LookupCloud returns the preset for name: "global" (also "" and "gcc"),
// "usgov" (GCC High), "dod" or "china" (21Vianet). Case and surrounding
// spaces are ignored because the name usually comes from a config file.
func LookupCloud(name string) (Cloud, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "global", "gcc":
		return cloudGlobal, nil
	case "usgov":
		return cloudUSGov, nil
	case "dod":
		return cloudDoD, nil
	case "china":
		return cloudChina, nil
	}
	return Cloud{}, fmt.Errorf("unknown cloud %q (valid: %s)", name, strings.Join(cloudNames, ", "))
}

// TokenURL is the v2.0 token endpoint of tenant (a GUID or verified domain)
// in this cloud. It is also the "aud" of the client assertion.
func (c Cloud) TokenURL(tenant string) string {
	return c.LoginURL + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// Scope is the client credentials scope for Graph in this cloud:
// "<graph resource>/.default" unless WithScope pinned another one.
func (c Cloud) Scope() string {
	if c.scope != "" {
		return c.scope
	}
	return c.GraphURL + defaultScopeSuffix
}

// WithOverrides replaces the authority and/or the Graph base URL; an empty
// argument keeps the current value. Both must be https, except that plain
// http is allowed for loopback hosts (127.0.0.0/8, ::1, localhost) so
// tests can run a fake without TLS. A trailing slash is trimmed.
//
// The scope does NOT follow an overridden Graph URL: the scope names the
// resource the token is for (its audience), while the Graph URL is only
// where requests are sent. An override usually points at an egress proxy,
// a private endpoint or a fake in front of the same resource, and asking
// real Entra for a token for "https://proxy.example/.default" would fail
// (AADSTS500011). So the scope stays the one this Cloud had before the
// override; use WithScope to change it explicitly.
func (c Cloud) WithOverrides(loginURL, graphURL string) (Cloud, error) {
	if loginURL != "" {
		u, err := checkEndpointURL(loginURL)
		if err != nil {
			return Cloud{}, fmt.Errorf("login URL override: %w", err)
		}
		c.LoginURL = u
	}
	if graphURL != "" {
		u, err := checkEndpointURL(graphURL)
		if err != nil {
			return Cloud{}, fmt.Errorf("graph URL override: %w", err)
		}
		c.scope = c.Scope()
		c.GraphURL = u
	}
	return c, nil
}

// WithScope pins the token scope, for a private or test resource whose
// scope differs from the Graph URL. The client credentials grant only
// accepts "<resource>/.default" for a single resource, so scope must have
// that form; "" restores the default derived from GraphURL.
func (c Cloud) WithScope(scope string) (Cloud, error) {
	scope = strings.TrimSpace(scope)
	if scope != "" {
		if strings.ContainsAny(scope, " \t\r\n") {
			return Cloud{}, fmt.Errorf("scope %q: only one scope is allowed", scope)
		}
		resource, ok := strings.CutSuffix(scope, defaultScopeSuffix)
		if !ok || resource == "" {
			return Cloud{}, fmt.Errorf("scope %q: must be <resource>%s", scope, defaultScopeSuffix)
		}
	}
	c.scope = scope
	return c, nil
}

// checkEndpointURL validates an authority or Graph base URL and returns it
// without a trailing slash, ready for string concatenation.
func checkEndpointURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", err
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must not contain user info, a query or a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// Tokens and mail would cross the network in clear text; only a
		// loopback fake may do without TLS.
		if !isLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("%q: http is only allowed for a loopback host (127.0.0.1, ::1, localhost)", raw)
		}
	default:
		return "", fmt.Errorf("%q: scheme must be https", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
