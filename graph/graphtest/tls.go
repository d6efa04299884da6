package graphtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// pki is the fake's private certificate authority and the one leaf
// certificate that every TLS listener presents. A single leaf is enough
// because it carries the SANs of every host the fake impersonates.
type pki struct {
	caPEM  []byte
	pool   *x509.CertPool
	leaf   tls.Certificate
	caCert *x509.Certificate
}

// newPKI creates a CA and a leaf for 127.0.0.1, localhost and every real
// cloud host name. Validity follows the real clock, not the fake clock,
// because clients verify certificates against their own time.
func newPKI() (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "graphtest fake CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	login, graph, upload := cloudHostNames()
	dnsNames := append([]string{"localhost"}, login...)
	dnsNames = append(dnsNames, graph...)
	dnsNames = append(dnsNames, upload...)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "graphtest fake services"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &pki{
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:   pool,
		leaf:   tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey},
		caCert: caCert,
	}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func (p *pki) serverTLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.leaf}, MinVersion: tls.VersionTLS12}
}

// newLoopbackClient returns a client that trusts the fake's CA and ignores
// proxy environment variables, so that an HTTPS_PROXY set on a developer
// machine cannot divert test traffic.
func (p *pki) newLoopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
	}}
}

// cloudDialer routes dials for the real cloud host names to the fake's
// loopback listeners and refuses every other destination, so that a test
// using CloudHTTPClient can never reach the internet even if the code under
// test builds a URL the test did not expect.
type cloudDialer struct {
	routes map[string]string // "host:port" -> loopback listener address
	own    map[string]bool   // the fake's own listener addresses
}

func newCloudDialer(loginAddr, graphAddr, uploadAddr, imdsAddr string) *cloudDialer {
	d := &cloudDialer{routes: map[string]string{}, own: map[string]bool{}}
	login, graph, upload := cloudHostNames()
	for _, h := range login {
		d.routes[h+":443"] = loginAddr
	}
	for _, h := range graph {
		d.routes[h+":443"] = graphAddr
	}
	for _, h := range upload {
		d.routes[h+":443"] = uploadAddr
	}
	// The Azure instance metadata service has a fixed link-local address;
	// routing it lets managed-identity code run unmodified.
	d.routes["169.254.169.254:80"] = imdsAddr
	for _, a := range []string{loginAddr, graphAddr, uploadAddr, imdsAddr} {
		d.own[a] = true
		if _, port, err := net.SplitHostPort(a); err == nil {
			d.own["localhost:"+port] = true
		}
	}
	return d
}

func (d *cloudDialer) target(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("graphtest: refusing to dial %q: %w", addr, err)
	}
	key := strings.ToLower(strings.TrimSuffix(host, ".")) + ":" + port
	if t, ok := d.routes[key]; ok {
		return t, nil
	}
	if d.own[key] {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	return "", fmt.Errorf("graphtest: refusing to dial %s: not a cloud endpoint served by the fake", addr)
}

func (d *cloudDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	t, err := d.target(addr)
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", t)
}

func (p *pki) newCloudClient(d *cloudDialer) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
	}}
}
