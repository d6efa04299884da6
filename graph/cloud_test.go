package graph

import (
	"strings"
	"testing"
)

func TestLookupCloudPresets(t *testing.T) {
	for _, tc := range []struct {
		names    []string
		want     string
		tokenURL string
		scope    string
	}{
		{[]string{"global", "", "gcc", " Global "}, "global",
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://graph.microsoft.com/.default"},
		{[]string{"usgov", "USGov"}, "usgov",
			"https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://graph.microsoft.us/.default"},
		{[]string{"dod"}, "dod",
			"https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://dod-graph.microsoft.us/.default"},
		{[]string{"china"}, "china",
			"https://login.partner.microsoftonline.cn/contoso.onmicrosoft.com/oauth2/v2.0/token",
			"https://microsoftgraph.chinacloudapi.cn/.default"},
	} {
		for _, name := range tc.names {
			c, err := LookupCloud(name)
			if err != nil {
				t.Fatalf("LookupCloud(%q): %v", name, err)
			}
			if c.Name != tc.want {
				t.Errorf("LookupCloud(%q).Name = %q, want %q", name, c.Name, tc.want)
			}
			if got := c.TokenURL("contoso.onmicrosoft.com"); got != tc.tokenURL {
				t.Errorf("%s TokenURL = %q, want %q", name, got, tc.tokenURL)
			}
			if got := c.Scope(); got != tc.scope {
				t.Errorf("%s Scope = %q, want %q", name, got, tc.scope)
			}
		}
	}
}

func TestLookupCloudUnknown(t *testing.T) {
	_, err := LookupCloud("mooncake")
	if err == nil {
		t.Fatal("no error for an unknown cloud")
	}
	for _, name := range []string{"mooncake", "global", "gcc", "usgov", "dod", "china"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %q", err, name)
		}
	}
}

func TestCloudTokenURLEscapesTenant(t *testing.T) {
	c, _ := LookupCloud("global")
	if got, want := c.TokenURL("a/b c"), "https://login.microsoftonline.com/a%2Fb%20c/oauth2/v2.0/token"; got != want {
		t.Errorf("TokenURL = %q, want %q", got, want)
	}
}

func TestCloudWithOverrides(t *testing.T) {
	global, _ := LookupCloud("global")
	for _, tc := range []struct {
		name                 string
		login, graph         string
		wantLogin, wantGraph string
	}{
		{"none", "", "", "https://login.microsoftonline.com", "https://graph.microsoft.com"},
		{"login trailing slash", "https://login.example.test/", "", "https://login.example.test", "https://graph.microsoft.com"},
		{"graph proxy with path", "", "https://proxy.example.test/graph/", "https://login.microsoftonline.com", "https://proxy.example.test/graph"},
		{"loopback https", "https://127.0.0.1:8443", "https://127.0.0.1:9443", "https://127.0.0.1:8443", "https://127.0.0.1:9443"},
		{"loopback http v4", "http://127.0.0.1:8080", "http://127.0.0.1:8081/", "http://127.0.0.1:8080", "http://127.0.0.1:8081"},
		{"loopback http v6", "http://[::1]:8080", "", "http://[::1]:8080", "https://graph.microsoft.com"},
		{"loopback http localhost", "", "http://localhost:8081", "https://login.microsoftonline.com", "http://localhost:8081"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := global.WithOverrides(tc.login, tc.graph)
			if err != nil {
				t.Fatal(err)
			}
			if c.LoginURL != tc.wantLogin || c.GraphURL != tc.wantGraph {
				t.Errorf("got %q, %q; want %q, %q", c.LoginURL, c.GraphURL, tc.wantLogin, tc.wantGraph)
			}
			// The scope names the resource; moving the endpoint does not
			// change it.
			if got := c.Scope(); got != "https://graph.microsoft.com/.default" {
				t.Errorf("Scope = %q, want the preset's", got)
			}
			if c.Name != "global" {
				t.Errorf("Name = %q, want global", c.Name)
			}
		})
	}
}

func TestCloudWithOverridesRejects(t *testing.T) {
	global, _ := LookupCloud("global")
	for _, raw := range []string{
		"http://login.example.test",
		"http://10.0.0.1:8080",
		"ftp://login.example.test",
		"login.example.test",
		"/relative",
		"https://user:pw@login.example.test",
		"https://login.example.test/?x=1",
		"https://login.example.test/#frag",
		"https://%zz",
	} {
		if _, err := global.WithOverrides(raw, ""); err == nil || !strings.HasPrefix(err.Error(), "login URL override: ") {
			t.Errorf("login %q: err = %v, want a login URL override error", raw, err)
		}
		if _, err := global.WithOverrides("", raw); err == nil || !strings.HasPrefix(err.Error(), "graph URL override: ") {
			t.Errorf("graph %q: err = %v, want a graph URL override error", raw, err)
		}
	}
}

func TestCloudWithScope(t *testing.T) {
	global, _ := LookupCloud("global")
	fake, err := global.WithOverrides("https://127.0.0.1:8443", "https://127.0.0.1:9443")
	if err != nil {
		t.Fatal(err)
	}
	c, err := fake.WithScope("api://graphrelay-fake/.default")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Scope(); got != "api://graphrelay-fake/.default" {
		t.Errorf("Scope = %q after WithScope", got)
	}
	// A later Graph override keeps the pinned scope.
	c2, err := c.WithOverrides("", "https://127.0.0.1:10443")
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.Scope(); got != "api://graphrelay-fake/.default" {
		t.Errorf("Scope = %q after a second override", got)
	}
	// "" returns to the default derived from GraphURL.
	c3, err := c.WithScope("")
	if err != nil {
		t.Fatal(err)
	}
	if got := c3.Scope(); got != "https://127.0.0.1:9443/.default" {
		t.Errorf("Scope = %q after reset", got)
	}

	for _, bad := range []string{"https://graph.microsoft.com", "/.default", "https://a/.default https://b/.default", "Mail.Send"} {
		if _, err := global.WithScope(bad); err == nil {
			t.Errorf("WithScope(%q) accepted", bad)
		}
	}
}

func TestCloudLiteralDerivesScope(t *testing.T) {
	c := Cloud{Name: "fake", LoginURL: "https://127.0.0.1:1", GraphURL: "https://127.0.0.1:2"}
	if got := c.Scope(); got != "https://127.0.0.1:2/.default" {
		t.Errorf("Scope = %q", got)
	}
}
