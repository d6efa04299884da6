package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the built-in configuration: the dry-run default.
func Default() *Config {
	cfg := &Config{}
	if err := decodeStrict(defaultYAML, cfg); err != nil {
		// The file is compiled in and covered by tests, so a failure here is a
		// programming error, not an operator's.
		panic(fmt.Sprintf("config: built-in defaults are invalid: %v", err))
	}
	platformDefaults(cfg)
	return cfg
}

// Load builds the effective configuration: the defaults, then the YAML file
// at path (if path is not empty), then GRAPHRELAY_* variables from environ,
// then secrets read from their *_file settings. It validates the result and
// returns every problem at once as Errors.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	var lines lineIndex
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		if err := decodeStrict(data, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		lines = indexLines(data)
	}
	var errs Errors
	errs = append(errs, applyEnv(cfg, environ)...)
	errs = append(errs, readSecretFiles(cfg)...)
	normalize(cfg)
	errs = append(errs, Validate(cfg)...)
	if len(errs) > 0 {
		errs.attachLines(lines, path)
		return nil, errs
	}
	return cfg, nil
}

// decodeStrict rejects unknown keys, so that a misspelt setting is an error
// instead of a silently ignored line.
func decodeStrict(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file means "all defaults"
		}
		return cleanYAMLError(err)
	}
	return nil
}

var yamlFieldRE = regexp.MustCompile(`field (\S+) not found in type config\.(\w+)`)

// cleanYAMLError rewrites go-yaml's Go-flavoured messages ("field x not
// found in type config.Graph") into the words an operator uses.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		e = yamlFieldRE.ReplaceAllString(e, "unknown key $1 in section $2")
		msgs = append(msgs, e)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// readSecretFiles loads secrets kept outside the YAML, as Docker and
// Kubernetes secrets mount them. A trailing newline is trimmed because
// `echo secret > file` adds one.
func readSecretFiles(cfg *Config) Errors {
	var errs Errors
	load := func(key, path string, dst *Secret) {
		if path == "" {
			return
		}
		if *dst != "" {
			errs.add(key, "is set together with %s; keep only one", strings.TrimSuffix(key, "_file"))
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs.add(key, "cannot read the secret file: %v", err)
			return
		}
		*dst = Secret(strings.TrimRight(string(b), "\r\n"))
	}
	load("graph.client_secret_file", cfg.Graph.ClientSecretFile, &cfg.Graph.ClientSecret)
	load("graph.pfx_password_file", cfg.Graph.PFXPasswordFile, &cfg.Graph.PFXPassword)
	return errs
}

// UnmarshalYAML accepts "30s"-style durations and plain seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return d.UnmarshalText([]byte(n.Value))
}

// UnmarshalText parses a duration for YAML and environment variables.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		*d = Duration(secs * 1e9)
		return nil
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a form such as 30s, 5m or 1h)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints durations the way they are written.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.D().String()), nil }

// UnmarshalYAML accepts a mailbox as a plain address or as a mapping.
func (m *Mailbox) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return m.UnmarshalText([]byte(n.Value))
	case yaml.MappingNode:
		// Node.Decode has no strict mode, so unknown keys are checked here.
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i]; k.Value {
			case "address", "id", "max_concurrency", "messages_per_minute":
			default:
				return fmt.Errorf("line %d: unknown key %s in a mailbox (use address, id, max_concurrency, messages_per_minute)", k.Line, k.Value)
			}
		}
		type plain Mailbox
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*m = Mailbox(p)
		m.Address, m.ID = strings.TrimSpace(m.Address), strings.TrimSpace(m.ID)
		return nil
	}
	return fmt.Errorf("line %d: a mailbox is an address or a mapping with address and id", n.Line)
}

// UnmarshalText parses "address" or "address=object-id", the form used in
// GRAPHRELAY_MAILBOXES.
func (m *Mailbox) UnmarshalText(b []byte) error {
	addr, id, _ := strings.Cut(strings.TrimSpace(string(b)), "=")
	*m = Mailbox{Address: strings.TrimSpace(addr), ID: strings.TrimSpace(id)}
	return nil
}

// UnmarshalText parses "address" or "name=address", the form used in
// GRAPHRELAY_SMTP_LISTENERS.
func (l *Listener) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	name, addr, ok := strings.Cut(s, "=")
	if !ok {
		*l = Listener{Address: s}
		return nil
	}
	*l = Listener{Name: strings.TrimSpace(name), Address: strings.TrimSpace(addr)}
	return nil
}
