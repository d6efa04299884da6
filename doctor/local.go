package doctor

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/queue"
)

// checkSpool checks that the spool can take mail: the daemon fsyncs every
// message there before it answers 250.
func checkSpool(cfg *config.Config) Result {
	if cfg.Delivery.Mode == config.ModeDirect {
		// Direct mode queues nothing, but holds each message in a file
		// while it is sent: 451 for every message if it cannot.
		res := checkWritableDir("spool", cfg.DirectStagingDir(), "queue.dir")
		res.Detail = "direct mode stages each message in " + cfg.DirectStagingDir() + " while it is sent: " + res.Detail
		return res
	}
	if cfg.Delivery.Mode != config.ModeQueue {
		return Result{Name: "spool", Status: OK, Detail: "not used: delivery.mode is " + cfg.Delivery.Mode + ", nothing is spooled"}
	}
	res := checkWritableDir("spool", cfg.Queue.Dir, "queue.dir")
	if fi, err := os.Stat(cfg.Queue.Dir); res.Status == OK && err == nil && fi.IsDir() {
		// The lock (flock, LockFileEx) and, on Windows, the volume.
		note, err := queue.CheckSpool(cfg.Queue.Dir)
		if err != nil {
			res.Status, res.Detail = Fail, err.Error()
			res.Fix = "move queue.dir to a local NTFS or ReFS volume (Windows) or a local filesystem, writable by the user graphrelay runs as"
			return res
		}
		res.Detail += "; " + note
	}
	if res.Status == OK && runtime.GOOS != "windows" {
		if fi, err := os.Stat(cfg.Queue.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			res.Status = Warn
			res.Detail += fmt.Sprintf("; mode %04o lets other users read spooled mail", fi.Mode().Perm())
			res.Fix = "chmod 700 " + cfg.Queue.Dir
		}
	}
	return res
}

// checkOutbox checks where dry-run writes the requests it would have sent.
func checkOutbox(cfg *config.Config) Result {
	return checkWritableDir("outbox", cfg.OutboxDir, "outbox_dir")
}

// checkWritableDir writes, fsyncs and removes a file in dir, which is what
// the spool does with every message. A directory that does not exist yet is
// fine if the daemon can create it: its nearest existing parent is tried.
// The result is only true for the user running the check, so it says who
// that is.
func checkWritableDir(name, dir, key string) Result {
	res := Result{Name: name}
	as := " (as " + currentUser() + ")"
	target, note := dir, ""
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := existingParent(dir)
		target, note = parent, fmt.Sprintf("%s does not exist yet; graphrelay creates it at start in %s", dir, parent)
	case err != nil:
		res.Status, res.Detail, res.Fix = Fail, fmt.Sprintf("%s: %v", dir, err), "check "+key
		return res
	case !fi.IsDir():
		res.Status, res.Detail, res.Fix = Fail, dir+" is not a directory", key+" must name a directory"
		return res
	}
	if err := writeProbeFile(target); err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("cannot write in %s%s: %v", target, as, err)
		res.Fix = fmt.Sprintf("create %s and give it to the user graphrelay runs as (chown, chmod 700), or change %s", dir, key)
		return res
	}
	res.Status = OK
	if note != "" {
		res.Detail = note + as
	} else {
		res.Detail = dir + " is writable, and fsync works" + as
	}
	return res
}

func writeProbeFile(dir string) error {
	f, err := os.CreateTemp(dir, ".graphrelay-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	defer os.Remove(name)
	if _, err := f.Write([]byte("graphrelay check\n")); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(name)
}

func existingParent(dir string) string {
	p, err := filepath.Abs(dir)
	if err != nil {
		p = dir
	}
	for {
		parent := filepath.Dir(p)
		if fi, err := os.Stat(parent); err == nil && fi.IsDir() {
			return parent
		}
		if parent == p {
			return parent
		}
		p = parent
	}
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return "user " + u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// checkTLS loads the SMTP server certificate the way the daemon will, when
// a listener uses TLS. It never generates the self-signed one: that is the
// daemon's first start, and generating it here would fix its fingerprint
// under the wrong user.
func checkTLS(cfg *config.Config, now time.Time) Result {
	res := Result{Name: "tls"}
	var using []string
	for _, l := range cfg.SMTP.Listeners {
		if l.TLS == config.TLSStartTLS || l.TLS == config.TLSImplicit {
			using = append(using, l.Name+" ("+l.TLS+")")
		}
	}
	if len(using) == 0 {
		res.Status, res.Detail = OK, "not used: no listener has tls: starttls or implicit"
		return res
	}
	t := cfg.TLS
	certFile, keyFile := t.CertFile, t.KeyFile
	if certFile == "" {
		certFile = filepath.Join(t.SelfSignedDir, "cert.pem")
		keyFile = filepath.Join(t.SelfSignedDir, "key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			w := checkWritableDir("tls", t.SelfSignedDir, "tls.self_signed_dir")
			if w.Status == OK {
				w.Detail = "a self-signed certificate will be generated in " + t.SelfSignedDir + " at first start, for " + strings.Join(using, ", ") + "; " + w.Detail
			}
			return w
		}
	}
	if keyFile == "" {
		keyFile = certFile
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		res.Status, res.Detail = Fail, fmt.Sprintf("%s with %s: %v", certFile, keyFile, err)
		res.Fix = "tls.cert_file must be PEM (leaf first) and tls.key_file its unencrypted private key"
		return res
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			res.Status, res.Detail, res.Fix = Fail, err.Error(), "tls.cert_file must be PEM"
			return res
		}
	}
	sum := sha256.Sum256(leaf.Raw)
	left := leaf.NotAfter.Sub(now)
	res.Detail = fmt.Sprintf("%s for %s: %s, SHA-256 %X, expires %s (%d days), minimum TLS %s",
		certFile, strings.Join(using, ", "), leaf.Subject, sum[:8], leaf.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24), t.MinVersion)
	if t.LegacyCiphers {
		res.Detail += ", legacy cipher suites on"
	}
	res.Status = OK
	switch {
	case left <= 0:
		res.Status, res.Fix = Fail, "renew the certificate; clients that verify it refuse to connect (graphrelay reloads it without a restart)"
	case left < expiryWarning:
		res.Status, res.Fix = Warn, "renew the certificate before it expires (graphrelay reloads it without a restart)"
	case cfg.SMTP.Hostname != "" && leaf.VerifyHostname(cfg.SMTP.Hostname) != nil:
		res.Status = Warn
		res.Detail += "; it does not name smtp.hostname " + cfg.SMTP.Hostname
		res.Fix = "clients that verify the name will refuse it: issue the certificate for " + cfg.SMTP.Hostname + " or set smtp.hostname to a name it covers"
	}
	if loose, mode := groupOrWorldReadable(keyFile); loose && res.Status != Fail {
		res.Status = Warn
		res.Detail += fmt.Sprintf("; %s has mode %04o", keyFile, mode)
		res.Fix = fmt.Sprintf("chmod 600 %s: other users can read the server's private key", keyFile)
	}
	return res
}

// checkListener binds the listener's address and lets it go at once. A
// running graphrelay holds its addresses, so "in use" is expected then and
// only a warning.
func checkListener(l config.Listener) Result {
	res := Result{Name: "listener " + l.Name}
	ln, err := net.Listen("tcp", l.Address)
	if err == nil {
		ln.Close()
		res.Status = OK
		res.Detail = fmt.Sprintf("%s can be bound (tls %s, auth %s, clients from %s)", l.Address, l.TLS, l.Auth, strings.Join(l.Networks, ", "))
		return res
	}
	switch {
	case addrInUse(err):
		res.Status = Warn
		res.Detail = l.Address + " is in use (is graphrelay running?)"
		res.Fix = "if graphrelay is not running, find the program holding the port (ss -ltnp, or netstat -ano on Windows) or choose another address"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, fs.ErrPermission):
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s: permission denied", l.Address)
		res.Fix = "ports below 1024 need privilege: grant CAP_NET_BIND_SERVICE (systemd AmbientCapabilities=CAP_NET_BIND_SERVICE) or use a port above 1024"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		res.Status = Fail
		res.Detail = l.Address + " is not an address of this host"
		res.Fix = "bind to one of this host's addresses, or 0.0.0.0"
	default:
		res.Status, res.Detail, res.Fix = Fail, err.Error(), "check smtp.listeners address"
	}
	return res
}

// addrInUse recognises EADDRINUSE, and Windows' WSAEADDRINUSE by its text,
// which the syscall package has no portable constant for.
func addrInUse(err error) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "address already in use") || strings.Contains(msg, "Only one usage of each socket address")
}
