package tlsconf

import (
	"crypto/tls"
	"fmt"
)

// parseMinVersion maps the configured "1.0".."1.3" to crypto/tls's constant.
// The empty string means the default, TLS 1.2, so a configuration built in
// code without config's defaults still gets the safe value.
//
// Setting the value explicitly matters on Go 1.22 and later: only a zero
// tls.Config.MinVersion falls back to the TLS 1.2 default (which GODEBUG
// tls10server=1 would lower). An explicit VersionTLS10 is honoured by the
// server as it is, with no GODEBUG, which is what old printers need.
func parseMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.0":
		return tls.VersionTLS10, nil
	case "1.1":
		return tls.VersionTLS11, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tlsconf: tls.min_version must be 1.0, 1.1, 1.2 or 1.3, not %q", s)
}

// versionName is for log lines: "TLS 1.0" reads better than 0x0301.
func versionName(v uint16) string {
	return tls.VersionName(v)
}

// legacySuites are added to Go's defaults when legacy_ciphers is set.
//
// Go's default list (nil Config.CipherSuites) already has the ECDHE
// AES-CBC-SHA suites, which TLS 1.0 clients can use; what old devices
// additionally lack is one of:
//   - ECDHE at all: firmware built on OpenSSL 0.9.8 and embedded stacks of
//     that era send no supported_groups extension, and crypto/tls then
//     skips every ECDHE suite, so plain RSA key exchange is the only thing
//     left (Go has no DHE). Go 1.22 removed RSA key exchange from the
//     defaults (GODEBUG tlsrsakex=1 would bring it back process-wide).
//   - AES: some devices speak only 3DES. Go 1.23 removed 3DES from the
//     defaults (GODEBUG tls3des=1).
//
// Listing the suites in Config.CipherSuites enables them without any
// GODEBUG, for this server only. RC4 (forbidden by RFC 7465) and the
// CBC-SHA256 suites (not constant time in Go, and TLS 1.2-only, so no
// TLS 1.0 device needs them) stay out.
var legacySuites = []uint16{
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,       // in tls.InsecureCipherSuites
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, // in tls.InsecureCipherSuites
}

// cipherSuites returns the Config.CipherSuites to use: nil (Go's defaults,
// which follow Go's security updates) unless legacy suites are wanted. Then
// the list must be explicit, so it is Go's secure TLS 1.0-1.2 suites plus
// legacySuites; crypto/tls orders them by its own preference, so a modern
// client still gets ECDHE with AES-GCM or ChaCha20.
func cipherSuites(legacy bool) []uint16 {
	if !legacy {
		return nil
	}
	var ids []uint16
	seen := map[uint16]bool{}
	add := func(id uint16) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, s := range tls.CipherSuites() {
		if supportsPre13(s) {
			add(s.ID)
		}
	}
	for _, id := range legacySuites {
		add(id)
	}
	return ids
}

// supportsPre13 reports whether a suite is a TLS 1.0-1.2 one; the TLS 1.3
// suites are not configurable and do not belong in Config.CipherSuites.
func supportsPre13(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v < tls.VersionTLS13 {
			return true
		}
	}
	return false
}

// suiteNames is for the legacy-ciphers warning.
func suiteNames(ids []uint16) []string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = tls.CipherSuiteName(id)
	}
	return names
}
