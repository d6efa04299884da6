package graphtest

import (
	"net"
	"strings"
)

// graphAppID is the well-known application id of Microsoft Graph. Entra
// accepts "00000003-0000-0000-c000-000000000000/.default" as an alias of the
// cloud's Graph URL scope and then issues a token whose aud is this GUID.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// A cloud groups the host names of one national cloud. Tokens are not
// interchangeable between clouds (graph-api.md §5), so the token endpoint
// only issues Graph tokens for the cloud of the login host that was called,
// and each Graph host only accepts tokens of its own cloud.
type cloud struct {
	name       string
	loginHosts []string
	// graphHosts maps each Graph host to the Outlook host that serves its
	// upload sessions.
	graphHosts map[string]string
	// msgraphHost is the Graph host the cloud's discovery document names.
	msgraphHost string
	// issuer is the v1 token issuer format for this cloud; %s is the tenant.
	issuer string
}

var clouds = []*cloud{
	{
		name:        "global",
		loginHosts:  []string{"login.microsoftonline.com"},
		graphHosts:  map[string]string{"graph.microsoft.com": "outlook.office.com"},
		msgraphHost: "graph.microsoft.com",
		issuer:      "https://sts.windows.net/%s/",
	},
	{
		name:       "usgov",
		loginHosts: []string{"login.microsoftonline.us"},
		graphHosts: map[string]string{
			"graph.microsoft.us":     "outlook.office365.us",
			"dod-graph.microsoft.us": "outlook-dod.office365.us",
		},
		msgraphHost: "graph.microsoft.us",
		issuer:      "https://login.microsoftonline.us/%s/",
	},
	{
		name:        "china",
		loginHosts:  []string{"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"},
		graphHosts:  map[string]string{"microsoftgraph.chinacloudapi.cn": "partner.outlook.cn"},
		msgraphHost: "microsoftgraph.chinacloudapi.cn",
		issuer:      "https://sts.chinacloudapi.cn/%s/",
	},
}

// cloudHostNames lists every real host name the fake impersonates, for the
// certificate's SANs and for CloudHTTPClient's dial routing.
func cloudHostNames() (login, graph, upload []string) {
	for _, c := range clouds {
		login = append(login, c.loginHosts...)
		for g, u := range c.graphHosts {
			graph = append(graph, g)
			upload = append(upload, u)
		}
	}
	return login, graph, upload
}

// cloudForLoginHost returns the cloud whose login host is host, or nil.
func cloudForLoginHost(host string) *cloud {
	for _, c := range clouds {
		for _, h := range c.loginHosts {
			if strings.EqualFold(h, host) {
				return c
			}
		}
	}
	return nil
}

// cloudForGraphHost returns the cloud that serves Graph on host, or nil.
func cloudForGraphHost(host string) *cloud {
	for _, c := range clouds {
		for g := range c.graphHosts {
			if strings.EqualFold(g, host) {
				return c
			}
		}
	}
	return nil
}

// cloudForResource returns the cloud whose Graph resource URL is resource.
func cloudForResource(resource string) *cloud {
	host, ok := strings.CutPrefix(strings.ToLower(resource), "https://")
	if !ok {
		return nil
	}
	return cloudForGraphHost(host)
}

// hostOnly strips the port from a Host header value and lower-cases it.
func hostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// isLoopbackHost reports whether host (without port) names this machine, in
// which case the fake applies its loopback rules (Config.GraphScope).
func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "localhost" || host == "::1"
}
