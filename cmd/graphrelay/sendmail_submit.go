package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"go.yaml.in/yaml/v3"

	"github.com/graphrelay/graphrelay/config"
)

// sendmailDefaultConfig names the configuration read when neither --config
// nor GRAPHRELAY_CONFIG does, so that cron and PHP reach a packaged relay
// with no flags. Tests replace it.
var sendmailDefaultConfig = defaultConfigFile

// resolveSendmailServer picks graphrelay's SMTP address: --server, then
// GRAPHRELAY_SENDMAIL_SERVER, then the configuration's listeners, then the
// built-in default listener.
func resolveSendmailServer(o *sendmailOpts, getenv func(string) string) (string, error) {
	addr, _, err := resolveSendmailTarget(o, getenv)
	return addr, err
}

// builtInListeners names the source of the address when no configuration
// was found.
const builtInListeners = "the built-in configuration"

// resolveSendmailTarget is resolveSendmailServer that also names where the
// address came from, so that a failure can say when no configuration was
// found.
func resolveSendmailTarget(o *sendmailOpts, getenv func(string) string) (addr, source string, err error) {
	if o.server != "" {
		return o.server, "--server", nil
	}
	if s := getenv("GRAPHRELAY_SENDMAIL_SERVER"); s != "" {
		return s, "GRAPHRELAY_SENDMAIL_SERVER", nil
	}
	path, explicit := sendmailConfigPath(o, getenv)
	listeners, source := config.Default().SMTP.Listeners, builtInListeners
	if path != "" {
		sc, err := readSendmailConfig(path)
		switch {
		case err == nil && len(sc.Listeners) > 0:
			listeners, source = sc.Listeners, path
		// Only an absent default file means "no configuration". One that
		// exists but cannot be read names listeners sendmail would miss,
		// and guessing 127.0.0.1:2525 would fail later and less clearly.
		case err != nil && (explicit || !errors.Is(err, fs.ErrNotExist)):
			return "", "", fmt.Errorf("%v (make it readable: it holds no secrets when they are in *_file settings; or pass --server HOST:PORT)", err)
		}
	}
	addr, err = submissionTarget(listeners)
	if err != nil {
		return "", "", fmt.Errorf("%s: %v (add such a listener or pass --server HOST:PORT)", source, err)
	}
	return addr, source, nil
}

// sendmailConfigPath names the configuration sendmail reads: --config,
// then GRAPHRELAY_CONFIG (both explicit), then the default file.
func sendmailConfigPath(o *sendmailOpts, getenv func(string) string) (path string, explicit bool) {
	path, explicit = o.config, true
	if path == "" {
		path = getenv("GRAPHRELAY_CONFIG")
	}
	if path == "" {
		path, explicit = sendmailDefaultConfig(), false
	}
	return path, explicit
}

// sendmailConfig is the part of the configuration sendmail reads.
type sendmailConfig struct {
	Listeners     []config.Listener `yaml:"listeners"`
	QualifyDomain string            `yaml:"qualify_domain"`
}

// readSendmailConfig reads only smtp.listeners and smtp.qualify_domain
// from a configuration file. The full loader would also open every
// certificate and secret file the configuration names, which the users
// that run sendmail (www-data, a cron job's owner) must not be able to
// read.
func readSendmailConfig(path string) (sendmailConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return sendmailConfig{}, fmt.Errorf("cannot read the configuration: %w", err)
	}
	var doc struct {
		SMTP sendmailConfig `yaml:"smtp"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return sendmailConfig{}, fmt.Errorf("%s: %v", path, err)
	}
	return doc.SMTP, nil
}

// sendmailQualifyDomain is the domain that sendmail gives addresses
// without one: the configuration's smtp.qualify_domain when it can be read,
// else host, the local host name, as sendmail(8) uses $j.
func sendmailQualifyDomain(o *sendmailOpts, getenv func(string) string, host string) string {
	if path, _ := sendmailConfigPath(o, getenv); path != "" {
		if sc, err := readSendmailConfig(path); err == nil && sc.QualifyDomain != "" {
			return sc.QualifyDomain
		}
	}
	return host
}

// submissionTarget returns the address to dial for the first listener that
// takes mail from this host without AUTH or implicit TLS, which sendmail
// does not speak. A wildcard address is dialled on loopback.
func submissionTarget(ls []config.Listener) (string, error) {
	for _, l := range ls {
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil || port == "0" || l.Auth == config.AuthRequired || l.TLS == config.TLSImplicit {
			continue
		}
		ip := netip.MustParseAddr("127.0.0.1")
		switch a, err := netip.ParseAddr(host); {
		case host == "" || host == "localhost":
		case err != nil:
			return l.Address, nil // a host name: trust the administrator
		case a.IsUnspecified() && a.Is6():
			ip = netip.IPv6Loopback()
		case !a.IsUnspecified():
			ip = a
		}
		if admits(l.Networks, ip) {
			return net.JoinHostPort(ip.String(), port), nil
		}
	}
	return "", errors.New("no SMTP listener accepts mail from this host without AUTH")
}

// admits reports whether a listener's networks let ip connect; no networks
// means loopback only, as in config.Listener.
func admits(networks []string, ip netip.Addr) bool {
	if len(networks) == 0 {
		return ip.IsLoopback()
	}
	for _, n := range networks {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

// submitError is a failed SMTP submission: the step, and the server reply
// or network error.
type submitError struct {
	server string
	step   string // "connect", "EHLO", "MAIL FROM:<...>", "RCPT TO:<...>", "DATA", "end of DATA"
	err    error
}

func (e *submitError) Error() string {
	var se *smtp.SMTPError
	if errors.As(e.err, &se) {
		reply := fmt.Sprintf("%d", se.Code)
		if c := se.EnhancedCode; c != smtp.EnhancedCodeNotSet && c != smtp.NoEnhancedCode {
			reply += fmt.Sprintf(" %d.%d.%d", c[0], c[1], c[2])
		}
		what := "refused"
		if se.Code/100 == 4 {
			what = "deferred (try again later)"
		}
		return fmt.Sprintf("%s %s %s: %s %s", e.server, what, e.step, reply, se.Message)
	}
	if e.step == "connect" {
		return fmt.Sprintf("cannot reach graphrelay at %s (try again later): %v", e.server, e.err)
	}
	return fmt.Sprintf("%s: %s: %v (try again later)", e.server, e.step, e.err)
}

// exitCode maps the failure to sysexits: any 4xx or network failure is
// temporary, so cron and PHP retry; a 5xx to RCPT means that recipient is
// wrong, any other 5xx that the relay will not take this message.
func (e *submitError) exitCode() int {
	var se *smtp.SMTPError
	if !errors.As(e.err, &se) {
		return exTempFail
	}
	switch se.Code / 100 {
	case 4:
		return exTempFail
	case 5:
		if strings.HasPrefix(e.step, "RCPT") {
			return exNoUser
		}
		return exUnavailable
	}
	return exProtocol // a reply code the step does not allow
}

// sendmailDialTimeout bounds the connection to a relay on this host; a
// longer wait means it is down or overloaded, which EX_TEMPFAIL reports.
const sendmailDialTimeout = 30 * time.Second

// submitSMTP sends msg in one SMTP transaction and returns the server's
// final reply text (which names graphrelay's queue id). It is all or
// nothing: when any recipient is refused, the transaction is abandoned, so
// a non-zero exit always means no one received the message and a retry
// cannot duplicate it.
func submitSMTP(server, helo, from string, rcpts []string, msg []byte, transcript io.Writer) (string, error) {
	conn, err := net.DialTimeout("tcp", server, sendmailDialTimeout)
	if err != nil {
		return "", &submitError{server: server, step: "connect", err: err}
	}
	// go-smtp bounds each command (5 min) and the reply after the final dot
	// (12 min, as delivery.mode direct waits for Graph) with deadlines.
	c := smtp.NewClient(conn)
	defer c.Close()
	if transcript != nil {
		c.DebugWriter = transcript
	}
	step := func(name string, err error) error {
		if err != nil {
			return &submitError{server: server, step: name, err: err}
		}
		return nil
	}
	if err := step("EHLO", c.Hello(helo)); err != nil {
		return "", err
	}
	opts := &smtp.MailOptions{Size: int64(len(msg))}
	if ok, _ := c.Extension("SMTPUTF8"); ok && !isASCIIAll(append([]string{from}, rcpts...)) {
		opts.UTF8 = true
	}
	if err := step("MAIL FROM:<"+from+">", c.Mail(from, opts)); err != nil {
		return "", err
	}
	for _, r := range rcpts {
		if err := step("RCPT TO:<"+r+">", c.Rcpt(r, nil)); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err := step("DATA", err); err != nil {
		return "", err
	}
	if _, err := w.Write(msg); err != nil {
		return "", step("DATA", err)
	}
	resp, err := w.CloseWithResponse()
	if err := step("end of DATA", err); err != nil {
		return "", err
	}
	c.Quit()
	return resp.StatusText, nil
}

func isASCIIAll(ss []string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}
