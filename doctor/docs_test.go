package doctor

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph/graphtest"
	"github.com/graphrelay/graphrelay/policy"
	"go.yaml.in/yaml/v3"
)

// yamlBlockRE finds the ```yaml blocks of a Markdown file.
var yamlBlockRE = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// recipeGraph is the tenant each recipe is completed with, so that it is
// validated as a production configuration, not as a dry run.
const recipeGraph = `graph:
  tenant_id: 72aa88bf-76f0-494f-91ab-2d7cd730db47
  client_id: 97e0a5b7-d745-40b6-94fe-5f77d35c6e05
  credential: secret
  client_secret: not-a-real-secret
`

// hostPathRE matches the absolute Unix paths the recipes use, which the
// test maps into a temporary directory.
var hostPathRE = regexp.MustCompile(`/(?:etc|var/lib)/graphrelay/[\w./-]+`)

// TestDevicesRecipesLoad loads every YAML recipe in docs/devices.md as
// "graphrelay check" would: the configuration, the users and the rules, with
// no warnings, and the TLS files they name.
func TestDevicesRecipesLoad(t *testing.T) {
	blocks := yamlBlocks(t, "devices.md")
	if len(blocks) < 6 {
		t.Fatalf("found %d yaml blocks in docs/devices.md, want the 6 recipes", len(blocks))
	}
	loadRecipes(t, blocks)
}

// TestTenantSetupConfigLoads loads the complete configuration of
// docs/tenant-setup.md (the blocks with mailboxes; the others are excerpts).
func TestTenantSetupConfigLoads(t *testing.T) {
	var full []string
	for _, b := range yamlBlocks(t, "tenant-setup.md") {
		if regexp.MustCompile(`(?m)^mailboxes:`).MatchString(b) {
			full = append(full, b)
		}
	}
	if len(full) == 0 {
		t.Fatal("docs/tenant-setup.md has no complete configuration")
	}
	loadRecipes(t, full)
}

func yamlBlocks(t *testing.T, name string) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range yamlBlockRE.FindAllStringSubmatch(string(doc), -1) {
		out = append(out, m[1])
	}
	return out
}

func loadRecipes(t *testing.T, recipes []string) {
	for i, recipe := range recipes {
		name := recipeName(recipe, i)
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			text := hostPathRE.ReplaceAllStringFunc(recipe, func(p string) string { return filepath.Join(root, p) })
			pairs := map[string]*testCert{}
			for _, m := range regexp.MustCompile(`(?m)^\s*(\w+_file):\s*(\S+)`).FindAllStringSubmatch(text, -1) {
				createRecipeFile(t, pairs, m[1], m[2])
			}
			if !regexp.MustCompile(`(?m)^graph:`).MatchString(text) {
				text += recipeGraph
			}
			path := filepath.Join(root, "graphrelay.yaml")
			writeFile(t, path, []byte(text), 0o600)

			cfg, err := config.Load(path, nil)
			if err != nil {
				t.Fatalf("recipe does not load: %v\n%s", err, recipe)
			}
			if reason := cfg.DryRunReason(); reason != "" {
				t.Fatalf("recipe loads as a dry run (%s)", reason)
			}
			users, err := auth.Load(cfg.Users, cfg.UsersFile)
			if err != nil {
				t.Fatalf("users: %v", err)
			}
			_, warnings, err := policy.New(cfg, users.Has)
			if err != nil {
				t.Fatalf("rules: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("rule warnings: %v", warnings)
			}
			if len(cfg.Rules) > 0 {
				for _, r := range cfg.Rules {
					if len(r.Recipients) == 0 {
						t.Errorf("rule %q has no recipients: the docs must not show an open rule", r.Name)
					}
				}
			}
			if res := checkTLS(cfg, time.Now()); res.Status == Fail {
				t.Errorf("tls: %s", res.Detail)
			}
			if res := checkCredential(cfg.Graph, time.Now()); res.Status == Fail {
				t.Errorf("credential: %s", res.Detail)
			}
		})
	}
}

// recipeName names a subtest after the recipe's first rule or listener.
func recipeName(recipe string, i int) string {
	if m := regexp.MustCompile(`(?m)^\s*- name: (.+)$`).FindStringSubmatch(recipe); m != nil {
		return strings.TrimSpace(m[1])
	}
	return "recipe" + string(rune('0'+i))
}

// createRecipeFile makes the file a recipe names: a matching certificate
// and key for the *_file keys that hold them (one pair per directory, so a
// .crt and a .key beside each other belong together), a users list for
// users_file, an empty file otherwise.
func createRecipeFile(t *testing.T, pairs map[string]*testCert, key, path string) {
	t.Helper()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	switch key {
	case "cert_file", "key_file", "certificate_file":
		pair := pairs[dir]
		if pair == nil {
			pair = newTestCert(t, "relay.company.com", time.Now().Add(365*24*time.Hour))
			pairs[dir] = pair
		}
		if strings.HasSuffix(path, ".key") {
			copyFile(t, pair.keyFile, path)
		} else {
			copyFile(t, pair.certFile, path)
		}
	default:
		writeFile(t, path, nil, 0o600)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b, 0o600)
}

// The README's production steps lead to an all-OK check: its configuration,
// pointed at the fake tenant, with exactly the permission its step 1 grants
// (Mail.Send) and the mailboxes in the access policy.
func TestReadmeProductionStepsCheckOK(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)[strings.Index(string(doc), "## Production configuration"):]
	m := yamlBlockRE.FindStringSubmatch(section)
	if m == nil {
		t.Fatal("README.md's production configuration has no yaml block")
	}
	if !strings.Contains(section[:strings.Index(section, "```yaml")], "**Mail.Send application**") {
		t.Fatal("README.md's step 1 no longer grants Mail.Send; update this test with it")
	}
	var cfg config.Config = *config.Default()
	if err := yaml.Unmarshal([]byte(m[1]), &cfg); err != nil {
		t.Fatal(err)
	}
	cert := newTestCert(t, "graphrelay", time.Now().Add(365*24*time.Hour))
	var allowed []string
	var mailboxes []graphtest.Mailbox
	for _, mb := range cfg.Mailboxes {
		allowed = append(allowed, mb.Address)
		mailboxes = append(mailboxes, graphtest.Mailbox{Address: mb.Address, ID: mb.ID})
	}
	fake := graphtest.New(t, graphtest.Config{TenantID: cfg.Graph.TenantID, ClientID: cfg.Graph.ClientID,
		Certificates: []*x509.Certificate{cert.cert}, Roles: []string{"Mail.Send"}, Mailboxes: mailboxes, AccessPolicy: allowed})
	// Only what cannot be the README's on a test machine: the fake's hosts,
	// the certificate files keygen would write, a free port and a spool.
	cfg.Graph.AuthorityURL, cfg.Graph.GraphURL = fake.AuthorityURL(), fake.GraphURL()
	cfg.Graph.CertificateFile, cfg.Graph.KeyFile = cert.certFile, cert.keyFile
	cfg.SMTP.Listeners[0].Address = "127.0.0.1:0"
	cfg.Queue.Dir = filepath.Join(t.TempDir(), "spool")
	for _, r := range runDoctor(t, fake, &cfg) {
		if r.Status != OK {
			t.Errorf("%s: %s %s (fix: %s)", r.Name, r.Status, r.Detail, r.Fix)
		}
	}
}
