package doctor

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/graph"
)

// expiryWarning is how early an expiring certificate is reported: long
// enough to get a change through a change-advisory board.
const expiryWarning = 30 * 24 * time.Hour

const renewFix = "run graphrelay keygen --out DIR, upload the new app.cer beside the old one, point graph.certificate_file and graph.key_file at the new files, restart, then delete the old certificate from the app registration"

// checkCredential looks at the configured credential without contacting
// anyone: a certificate's validity and its key, or what can be said about
// a secret or a managed identity (little: the token step is their test).
func checkCredential(g config.Graph, now time.Time) Result {
	switch kind := g.CredentialKind(); kind {
	case config.CredentialCertificate:
		return checkCertificate(g, now)
	case config.CredentialSecret:
		return checkSecret(g)
	case config.CredentialManagedIdentity:
		return checkManagedIdentity(g)
	default:
		return Result{Name: "credential", Status: Fail, Detail: fmt.Sprintf("no usable credential (%q)", kind),
			Fix: "set graph.certificate_file and graph.key_file (see graphrelay keygen), graph.client_secret_file, or graph.credential: managed_identity"}
	}
}

func checkCertificate(g config.Graph, now time.Time) Result {
	res := Result{Name: "credential"}
	var (
		cert *graph.Certificate
		err  error
		file = g.CertificateFile
	)
	if g.PFXFile != "" {
		file = g.PFXFile
		cert, err = graph.LoadPFX(g.PFXFile, string(g.PFXPassword))
	} else {
		cert, err = graph.LoadPEM(g.CertificateFile, g.KeyFile)
	}
	if err != nil {
		res.Status, res.Detail = Fail, err.Error()
		msg := err.Error()
		switch {
		case strings.Contains(msg, "does not match"):
			res.Fix = "graph.key_file belongs to another certificate: use the key made together with this certificate (graphrelay keygen writes both)"
		case strings.Contains(msg, "PFX password"):
			res.Fix = "check graph.pfx_password_file (or graph.pfx_password): it must be the password the .pfx was exported with"
		default:
			res.Fix = "graph.certificate_file must hold a PEM certificate and graph.key_file its unencrypted RSA key (or use graph.pfx_file)"
		}
		return res
	}
	leaf := cert.Leaf
	left := leaf.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	res.Detail = fmt.Sprintf("certificate %s (%s), %s, expires %s (%d days); the key matches it",
		leaf.Subject, file, thumbprints(cert), leaf.NotAfter.UTC().Format(time.DateOnly), days)
	switch {
	case left <= 0:
		res.Status = Fail
		res.Detail = fmt.Sprintf("certificate %s (%s), %s, expired on %s: Entra refuses assertions signed with it",
			leaf.Subject, file, thumbprints(cert), leaf.NotAfter.UTC().Format(time.DateOnly))
		res.Fix = renewFix
	case now.Before(leaf.NotBefore):
		res.Status = Warn
		res.Detail += fmt.Sprintf("; not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
		res.Fix = "check the system clock, or wait until the certificate becomes valid"
	case left < expiryWarning:
		res.Status, res.Fix = Warn, renewFix
	default:
		res.Status = OK
	}
	if keyFile := privateKeyFile(g); keyFile != "" && res.Status != Fail {
		if loose, mode := groupOrWorldReadable(keyFile); loose {
			res.Status = Warn
			res.Detail += fmt.Sprintf("; %s has mode %04o: other users can read the app's private key", keyFile, mode)
			res.Fix = fmt.Sprintf("chmod 600 %s and chown it to the user graphrelay runs as", keyFile)
		}
	}
	return res
}

// privateKeyFile is the file that holds the app's private key.
func privateKeyFile(g config.Graph) string {
	switch {
	case g.PFXFile != "":
		return g.PFXFile
	case g.KeyFile != "":
		return g.KeyFile
	}
	return g.CertificateFile
}

// groupOrWorldReadable reports a key file that users other than its owner
// can read. Windows has no such mode bits; ACLs are out of reach here.
func groupOrWorldReadable(path string) (bool, os.FileMode) {
	if runtime.GOOS == "windows" {
		return false, 0
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, 0
	}
	return fi.Mode().Perm()&0o044 != 0, fi.Mode().Perm()
}

// secretIDRE matches a GUID: what the portal shows as a secret's "Secret
// ID". Secret values are 40 characters with punctuation, never a GUID.
var secretIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func checkSecret(g config.Graph) Result {
	from := "inline graph.client_secret"
	if g.ClientSecretFile != "" {
		from = "graph.client_secret_file " + g.ClientSecretFile
	}
	if secretIDRE.MatchString(string(g.ClientSecret)) {
		return Result{Name: "credential", Status: Warn,
			Detail: "the client secret (" + from + ") is a GUID: that is the secret's ID, not its value",
			Fix:    "copy the secret's Value (shown once, when it is created) instead of its Secret ID; create a new secret if the value is lost"}
	}
	return Result{Name: "credential", Status: OK,
		Detail: "client secret from " + from + "; its expiry cannot be read from the secret itself: Entra reports an expired secret as AADSTS7000222 at the token step, and the portal shows the date under Certificates & secrets"}
}

func checkManagedIdentity(g config.Graph) Result {
	var how string
	switch {
	case g.FederatedTokenFile != "":
		how = "workload identity federation with the token in " + g.FederatedTokenFile
	case g.ManagedIdentityClientID != "":
		how = "user-assigned managed identity " + g.ManagedIdentityClientID + " of the " + graph.ManagedIdentityHost()
	default:
		how = "system-assigned managed identity of the " + graph.ManagedIdentityHost()
	}
	if g.IMDSEndpoint != "" && g.FederatedTokenFile == "" {
		how += "; IMDS at " + g.IMDSEndpoint
	}
	return Result{Name: "credential", Status: OK,
		Detail: how + "; there is no local secret or certificate to check: the token step shows whether the identity answers"}
}

// thumbprints names both digests of the certificate the way the admin meets
// them: the portal's Certificates & secrets lists the SHA-1 one under
// "Thumbprint", while AADSTS700027 quotes the SHA-256 one (the x5t#S256 of
// PS256 assertions) as "Thumbprint of key used by client".
func thumbprints(cert *graph.Certificate) string {
	return fmt.Sprintf("Thumbprint %X (SHA-1, as the portal's Certificates & secrets lists it), SHA-256 thumbprint %X (as AADSTS700027 quotes it)",
		cert.ThumbprintSHA1(), cert.ThumbprintSHA256())
}
