package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// keygenBits is the RSA size of the app credential: 3072 bits is NIST's
// recommendation beyond 2030, and Entra accepts RSA of 2048 bits and up.
const keygenBits = 3072

// The files keygen writes, and their modes: the key and the .pfx are
// secrets; the certificates are public (they are uploaded to Entra).
var keygenFiles = []struct {
	name string
	mode fs.FileMode
	pfx  bool
}{
	{"app.key", 0o600, false},
	{"app.crt", 0o644, false},
	{"app.cer", 0o644, false},
	{"app.pfx", 0o600, true},
}

// appCredential is a freshly generated key and its self-signed certificate.
type appCredential struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// keygenCmd creates the app registration's certificate credential.
func keygenCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	out := flags.String("out", ".", "`directory` to write app.key, app.crt, app.cer (and app.pfx) into")
	subject := flags.String("subject", "CN=graphrelay", "certificate subject, such as \"CN=graphrelay,O=Contoso\"")
	days := flags.Int("days", 730, "validity in `days`")
	withPFX := flags.Bool("pfx", false, "also write app.pfx (PKCS#12, AES-256), for Windows or Azure Key Vault")
	pfxPassFile := flags.String("pfx-password-file", "", "read the .pfx password from the first line of `file` (implies --pfx); otherwise it is prompted for, or read from stdin")
	force := flags.Bool("force", false, "overwrite existing files")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: graphrelay keygen [--out DIR] [--subject "CN=graphrelay"] [--days 730] [--pfx] [--pfx-password-file F] [--force]

Creates the app registration's certificate credential: an RSA 3072 key and a
self-signed certificate. Upload app.cer under Certificates & secrets, and
point graph.certificate_file and graph.key_file at app.crt and app.key.

Give the .pfx a long random password (for example from openssl rand -hex 16):
its key derivation is cheap enough that a short password can be guessed.

`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "graphrelay keygen: unexpected arguments %q\n", flags.Args())
		return 2
	}
	name, err := parseSubject(*subject)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay keygen: --subject: %v\n", err)
		return 2
	}
	if *days < 1 || *days > 3650 {
		fmt.Fprintln(stderr, "graphrelay keygen: --days must be between 1 and 3650")
		return 2
	}
	if *pfxPassFile != "" {
		*withPFX = true
	}

	paths := map[string]string{}
	var existing []string
	for _, f := range keygenFiles {
		if f.pfx && !*withPFX {
			continue
		}
		p := filepath.Join(*out, f.name)
		paths[f.name] = p
		if _, err := os.Lstat(p); err == nil {
			existing = append(existing, p)
		}
	}
	if len(existing) > 0 && !*force {
		fmt.Fprintf(stderr, "graphrelay keygen: %s already exist(s); refusing to overwrite a credential that may be in use (use --force to replace)\n",
			strings.Join(existing, ", "))
		return 1
	}

	// The password is asked before the slow key generation, so a typo ends
	// the command at once.
	var password string
	if *withPFX {
		if password, err = pfxPassword(*pfxPassFile, stdin, stderr); err != nil {
			fmt.Fprintf(stderr, "graphrelay keygen: %v\n", err)
			return 1
		}
	}
	cred, err := newAppCredential(name, time.Duration(*days)*24*time.Hour, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay keygen: %v\n", err)
		return 1
	}
	contents, err := cred.encode(*withPFX, password)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay keygen: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		fmt.Fprintf(stderr, "graphrelay keygen: %v\n", err)
		return 1
	}
	var written []string
	for _, f := range keygenFiles {
		p, ok := paths[f.name]
		if !ok {
			continue
		}
		if err := writeCredentialFile(p, contents[f.name], f.mode, *force); err != nil {
			// A half-written credential is worse than none: remove what
			// this run created.
			for _, w := range written {
				os.Remove(w)
			}
			fmt.Fprintf(stderr, "graphrelay keygen: %v\n", err)
			return 1
		}
		written = append(written, p)
	}
	cred.printSummary(stdout, paths, *withPFX)
	return 0
}

// parseSubject reads a distinguished name written as in the Windows and
// openssl tools, "CN=graphrelay,O=Contoso" (a leading "/" form is not
// accepted). A bare name is taken as the CN.
func parseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	s = strings.TrimSpace(s)
	if s == "" {
		return n, errors.New("is empty")
	}
	if !strings.Contains(s, "=") {
		n.CommonName = s
		return n, nil
	}
	for _, part := range splitUnescaped(s, ',') {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(strings.ReplaceAll(v, `\,`, ","))
		if !ok || v == "" {
			return n, fmt.Errorf("%q is not KEY=value", part)
		}
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST", "S":
			n.Province = append(n.Province, v)
		case "C":
			if len(v) != 2 {
				return n, fmt.Errorf("C=%s: a country is a two-letter code", v)
			}
			n.Country = append(n.Country, strings.ToUpper(v))
		default:
			return n, fmt.Errorf("unsupported attribute %s (use CN, O, OU, L, ST, C)", k)
		}
	}
	if n.CommonName == "" {
		return n, errors.New("needs a CN, such as CN=graphrelay")
	}
	return n, nil
}

// splitUnescaped splits s at sep, except where sep is escaped with "\".
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// newAppCredential generates the key and a self-signed certificate valid
// from a few minutes ago (so a slightly slow clock elsewhere does not see
// it as not yet valid) for validity. Entra uses only the public key and the
// dates; digitalSignature is the one use it needs, for signing assertions.
func newAppCredential(subject pkix.Name, validity time.Duration, now time.Time) (*appCredential, error) {
	key, err := rsa.GenerateKey(rand.Reader, keygenBits)
	if err != nil {
		return nil, fmt.Errorf("generate the RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate a serial number: %w", err)
	}
	notBefore := now.Add(-5 * time.Minute).UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              now.Add(validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the new certificate: %w", err)
	}
	return &appCredential{key: key, cert: cert}, nil
}

// encode returns each file's content by name.
func (c *appCredential) encode(withPFX bool, password string) (map[string][]byte, error) {
	pk, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("encode the key: %w", err)
	}
	out := map[string][]byte{
		"app.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		"app.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}),
		// DER is what the portal's "Upload certificate" expects in a .cer;
		// it accepts .cer, .pem and .crt alike.
		"app.cer": c.cert.Raw,
	}
	if withPFX {
		pfx, err := pkcs12.Modern.Encode(c.key, c.cert, nil, password)
		if err != nil {
			return nil, fmt.Errorf("encode the .pfx: %w", err)
		}
		out["app.pfx"] = pfx
	}
	return out, nil
}

// pfxPassword reads the .pfx password from file, or else as passwd does:
// a prompt without echo, asked twice, on a terminal, or the first line of
// stdin. An empty password would leave the key unprotected in the file.
func pfxPassword(file string, stdin io.Reader, stderr io.Writer) (string, error) {
	if file == "" {
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return "", fmt.Errorf("the .pfx password: %w", err)
		}
		return pw, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read --pfx-password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("--pfx-password-file %s: the first line is empty", file)
	}
	return line, nil
}

// writeCredentialFile writes data to path with mode, whatever the umask.
// Without force, O_EXCL makes sure that nothing is replaced even if a file
// appeared since the check; with force, the file is replaced by a rename,
// so the old credential stays whole until the new one is.
func writeCredentialFile(path string, data []byte, mode fs.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		return finishFile(f, path, data, mode)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := finishFile(f, tmp, data, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func finishFile(f *os.File, path string, data []byte, mode fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// printSummary tells the admin what was written and what to do next. It
// prints no key material.
func (c *appCredential) printSummary(w io.Writer, paths map[string]string, withPFX bool) {
	abs := func(name string) string {
		if p, err := filepath.Abs(paths[name]); err == nil {
			return p
		}
		return paths[name]
	}
	sha1Sum, sha256Sum := sha1.Sum(c.cert.Raw), sha256.Sum256(c.cert.Raw)
	days := int(c.cert.NotAfter.Sub(c.cert.NotBefore).Hours() / 24)
	fmt.Fprintf(w, "Wrote:\n")
	fmt.Fprintf(w, "  %s  private key (PEM, PKCS#8, mode 0600): keep it secret, readable only by graphrelay's user\n", abs("app.key"))
	fmt.Fprintf(w, "  %s  certificate (PEM), for graph.certificate_file\n", abs("app.crt"))
	fmt.Fprintf(w, "  %s  certificate (DER), to upload to the app registration\n", abs("app.cer"))
	if withPFX {
		fmt.Fprintf(w, "  %s  key and certificate (PKCS#12, AES-256), for Windows or Azure Key Vault\n", abs("app.pfx"))
	}
	fmt.Fprintf(w, "\nSubject:             %s\n", c.cert.Subject)
	fmt.Fprintf(w, "SHA-1 thumbprint:    %X\n", sha1Sum[:])
	fmt.Fprintf(w, "SHA-256 thumbprint:  %X\n", sha256Sum[:])
	fmt.Fprintf(w, "Valid:               %s to %s (%d days)\n",
		c.cert.NotBefore.Format(time.DateOnly), c.cert.NotAfter.Format(time.DateOnly), days)
	fmt.Fprintf(w, `
Next steps:
  1. Entra admin center > App registrations > your app > Certificates & secrets >
     Certificates > Upload certificate, and choose
       %s
     The Thumbprint column must then show %X.
  2. In graphrelay's configuration:
       graph:
         certificate_file: %s
         key_file: %s
     and make app.key readable only by the user graphrelay runs as.
  3. Check the whole setup, without sending mail:
       graphrelay check --config /etc/graphrelay/graphrelay.yaml
  Renew before %s: run keygen again into a new directory, upload the new
  app.cer beside the old one, switch the files, then delete the old one.
`, abs("app.cer"), sha1Sum[:], abs("app.crt"), abs("app.key"), c.cert.NotAfter.Format(time.DateOnly))
}
