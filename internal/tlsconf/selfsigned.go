package tlsconf

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Names inside tls.self_signed_dir.
const (
	selfSignedCert = "cert.pem"
	selfSignedKey  = "key.pem"
)

// selfSignedYears is the validity. Long enough that devices where the
// fingerprint was pinned or the certificate imported do not break often;
// the certificate is regenerated at start once it has expired.
const selfSignedYears = 2

// ensureSelfSigned returns the self-signed pair in dir, creating it when
// absent or expired. An existing pair is reused, so its fingerprint stays
// the same across restarts: devices that pinned or imported it keep
// working.
func ensureSelfSigned(dir, hostname string, log *slog.Logger) (certFile, keyFile string, err error) {
	if dir == "" {
		return "", "", errors.New("tlsconf: tls.self_signed needs tls.self_signed_dir")
	}
	certFile = filepath.Join(dir, selfSignedCert)
	keyFile = filepath.Join(dir, selfSignedKey)

	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case certErr == nil && keyErr == nil:
		l, err := loadPair(certFile, keyFile)
		if err != nil {
			// Never overwrite a pair that exists but does not load: it may
			// be one the operator put there, and a new one would change
			// the fingerprint that devices pinned.
			return "", "", fmt.Errorf("%w (remove %s and %s to have a new self-signed certificate generated)", err, certFile, keyFile)
		}
		if time.Now().After(l.cert.Leaf.NotAfter) {
			log.Warn("self-signed tls certificate has expired; generating a new one (its fingerprint changes)",
				"cert_file", certFile, "old_sha256", l.fingerprint)
			break
		}
		checkKeyMode(keyFile, log)
		return certFile, keyFile, nil
	case !errors.Is(certErr, fs.ErrNotExist) && certErr != nil:
		return "", "", fmt.Errorf("tlsconf: self-signed certificate: %w", certErr)
	case !errors.Is(keyErr, fs.ErrNotExist) && keyErr != nil:
		return "", "", fmt.Errorf("tlsconf: self-signed key: %w", keyErr)
	}
	// One or both missing: a first start, or a start interrupted between
	// writing the key and the certificate. Either way a half pair is of no
	// use, so make a whole new one.
	if err := generateSelfSigned(certFile, keyFile, hostname); err != nil {
		return "", "", err
	}
	log.Info("generated a self-signed tls certificate", "cert_file", certFile, "key_file", keyFile)
	return certFile, keyFile, nil
}

// generateSelfSigned writes a new RSA 2048 key (0600) and a certificate for
// hostname, "localhost" and this machine's addresses. RSA, not ECDSA,
// because printers of the TLS 1.0 era often have no ECDSA; 2048 bits
// because some of them fail on larger keys. The key usage includes key
// encipherment, which RSA key exchange (the legacy suites) requires.
func generateSelfSigned(certFile, keyFile, hostname string) error {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	if hostname == "" {
		hostname = "localhost"
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("tlsconf: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("tlsconf: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   hostname,
			Organization: []string{"graphrelay self-signed"},
		},
		// An hour back for devices whose clock is a little behind.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(selfSignedYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	tmpl.DNSNames, tmpl.IPAddresses = subjectAltNames(hostname, machineIPs())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tlsconf: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsconf: encode key: %w", err)
	}

	dir := filepath.Dir(certFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	// Key first: a crash between the two writes leaves no certificate, and
	// the next start regenerates both.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// subjectAltNames puts hostname among the DNS names, or among the IPs when
// it is an address literal, and adds "localhost" and the given addresses.
func subjectAltNames(hostname string, ips []net.IP) ([]string, []net.IP) {
	var names []string
	var addrs []net.IP
	addIP := func(ip net.IP) {
		for _, a := range addrs {
			if a.Equal(ip) {
				return
			}
		}
		addrs = append(addrs, ip)
	}
	if ip := net.ParseIP(hostname); ip != nil {
		addIP(ip)
	} else if hostname != "localhost" {
		names = append(names, hostname)
	}
	names = append(names, "localhost")
	addIP(net.IPv4(127, 0, 0, 1))
	addIP(net.IPv6loopback)
	for _, ip := range ips {
		addIP(ip)
	}
	return names, addrs
}

// machineIPs lists this machine's unicast addresses, so devices configured
// with the relay's IP instead of a name match a SAN too. Link-local
// addresses are left out: they need a zone and no device is set up with
// one.
func machineIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() || n.IP.IsUnspecified() {
			continue
		}
		ips = append(ips, n.IP)
	}
	return ips
}

// checkKeyMode warns when an existing key is readable by others. It does
// not chmod: the operator may have chosen group access on purpose.
func checkKeyMode(keyFile string, log *slog.Logger) {
	if runtime.GOOS == "windows" {
		return // permission bits mean nothing there
	}
	fi, err := os.Stat(keyFile)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("tls private key file is readable by other users; chmod 600 it", "key_file", keyFile, "mode", fi.Mode().Perm().String())
	}
}

// writeFileAtomic writes through a temporary file in the same directory,
// so a reader (Watch, or a concurrent start) never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600 before any byte is written, so the key
	// is never briefly readable; Chmod then sets the intended mode.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	return nil
}
