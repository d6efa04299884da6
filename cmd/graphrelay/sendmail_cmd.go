package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/graphrelay/graphrelay/internal/mailhdr"
)

// Exit codes from sysexits.h. cron, PHP's mail(), mail(1) and monitoring
// daemons read them: EX_TEMPFAIL means "keep the message and try later",
// every other non-zero code is a permanent failure.
const (
	exUsage       = 64 // bad flags, no recipients
	exDataErr     = 65 // the message or an address in it is unusable
	exNoUser      = 67 // a recipient was refused (5xx to RCPT)
	exUnavailable = 69 // the relay refused the message permanently
	exSoftware    = 70 // an error graphrelay did not expect
	exIOErr       = 74 // stdin could not be read
	exTempFail    = 75 // relay down, or a 4xx reply: retry later
	exProtocol    = 76 // the server answered outside the protocol
	exConfig      = 78 // the named configuration cannot be read
)

const sendmailUsage = `Usage: graphrelay sendmail [flags] [recipient...]
       sendmail [flags] [recipient...]     (through a symlink named sendmail)

Reads a message on stdin and submits it over SMTP to the local graphrelay.

  -t              also send to the To, Cc and Bcc addresses of the message
  -i, -oi         a line with a single "." does not end the message
  -f SENDER       envelope sender (default: the invoking user @ this host)
  -F NAME         sender's full name, for a message without a From header
  -v              print the SMTP dialogue on stdout
  --server H:P    graphrelay's SMTP address (default $GRAPHRELAY_SENDMAIL_SERVER,
                  else the first loopback-reachable listener of --config FILE,
                  $GRAPHRELAY_CONFIG or the default configuration file,
                  else 127.0.0.1:2525)
  --config FILE   configuration whose listeners name the server

Accepted and ignored for compatibility: -bm -odi -odb -oem -oQ... -oX...
-B TYPE -N DSN -R RET -V ENVID -X FILE -L TAG -h N -C FILE -G -U -n -m -s.
-q and -bi succeed without doing anything (the daemon runs the queue).

Exit codes are sendmail's (sysexits.h): 0 sent, 64 usage or no recipients,
65 unusable message, 67 recipient refused, 69 message refused, 74 stdin
unreadable, 75 relay down or busy: try again later, 76 protocol error,
78 configuration unreadable. Unless the connection broke after the whole
message was sent, a failure means the relay did not accept the message.
`

// sendmailOpts are the parsed command line.
type sendmailOpts struct {
	extract    bool // -t
	ignoreDots bool // -i, -oi, -O IgnoreDots
	sender     string
	senderSet  bool // -f or -r, possibly with the null sender
	fullName   string
	verbose    bool
	server     string
	config     string
	noop       bool // -q, -bi: nothing to do
	help       bool
	rcpts      []string
}

// Options as sendmail's getopt knows them: those taking a value (attached,
// "-fuser", or as the next argument), those whose value is optional and
// only ever attached, and the plain switches that may be grouped ("-ti").
const (
	smValueOpts    = "BbCeFfhLMNOopQRrVX"
	smAttachedOpts = "qdA"
	smSwitches     = "GimnstUv"
)

type usageError string

func (e usageError) Error() string { return string(e) }

// parseSendmailArgs parses sendmail's command line. Options may follow
// recipients, as GNU getopt and Postfix allow; "--" ends them.
func parseSendmailArgs(args []string) (*sendmailOpts, error) {
	o := &sendmailOpts{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.rcpts = append(o.rcpts, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			if name == "help" {
				o.help = true
				continue
			}
			if name != "server" && name != "config" {
				return nil, usageError("unknown option " + a)
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, usageError("option --" + name + " needs a value")
				}
				i++
				val = args[i]
			}
			if name == "server" {
				o.server = val
			} else {
				o.config = val
			}
		case len(a) > 1 && a[0] == '-':
			var err error
			if i, err = o.parseShort(args, i); err != nil {
				return nil, err
			}
		default:
			o.rcpts = append(o.rcpts, a)
		}
	}
	return o, nil
}

// parseShort handles one "-..." argument at args[i] and returns the index
// of the last argument it consumed.
func (o *sendmailOpts) parseShort(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		c := a[j]
		// "-h N" is sendmail's hop count, which nobody passes any more; a
		// bare "-h" is someone asking for help.
		if a == "-h" && (i+1 >= len(args) || strings.Trim(args[i+1], "0123456789") != "") {
			o.help = true
			return i, nil
		}
		switch {
		case strings.IndexByte(smSwitches, c) >= 0:
			switch c {
			case 't':
				o.extract = true
			case 'i':
				o.ignoreDots = true
			case 'v':
				o.verbose = true
			}
		case strings.IndexByte(smAttachedOpts, c) >= 0:
			if c == 'q' {
				o.noop = true
			}
			return i, nil
		case strings.IndexByte(smValueOpts, c) >= 0:
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return i, usageError(fmt.Sprintf("option -%c needs a value", c))
				}
				i++
				val = args[i]
			}
			return i, o.setValue(c, val)
		default:
			return i, usageError(fmt.Sprintf("unknown option -%c", c))
		}
	}
	return i, nil
}

func (o *sendmailOpts) setValue(c byte, val string) error {
	switch c {
	case 'f', 'r':
		o.sender, o.senderSet = val, true
	case 'F':
		o.fullName = val
	case 'o':
		if val == "i" {
			o.ignoreDots = true
		}
	case 'O':
		if k, v, _ := strings.Cut(val, "="); strings.EqualFold(k, "IgnoreDots") && !strings.EqualFold(v, "false") {
			o.ignoreDots = true
		}
	case 'b':
		switch val {
		case "m":
		case "i":
			o.noop = true // newaliases: graphrelay has no alias database
		case "p":
			return usageError("-bp (mailq) is not supported: run \"graphrelay queue list\" on the relay")
		default:
			return usageError("-b" + val + " is not supported: graphrelay's sendmail only submits mail (-bm)")
		}
	}
	// The other options tune a local MTA's queue, DSN and logging, which
	// graphrelay does not have; failing on them would break the programs
	// that pass them out of habit.
	return nil
}

// sendmailCmd runs "graphrelay sendmail", also reached when the binary is
// invoked as "sendmail".
func sendmailCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		msg := strings.Join(strings.Fields(fmt.Sprintf(format, a...)), " ")
		fmt.Fprintf(stderr, "graphrelay sendmail: %s\n", msg)
		return code
	}
	o, err := parseSendmailArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "graphrelay sendmail: %v\n\n%s", err, sendmailUsage)
		return exUsage
	}
	if o.help {
		fmt.Fprint(stdout, sendmailUsage)
		return 0
	}
	if o.noop {
		return 0
	}
	server, source, err := resolveSendmailTarget(o, os.Getenv)
	if err != nil {
		return fail(exConfig, "%v", err)
	}
	host := localHostName()
	domain := sendmailQualifyDomain(o, os.Getenv, host)
	login := loginName()
	sender := qualify(login, domain)
	if o.senderSet {
		if sender, err = parseSender(o.sender, domain); err != nil {
			return fail(exUsage, "%v", err)
		}
	}
	fromAddr := sender
	if fromAddr == "" {
		fromAddr = qualify(login, domain)
	}
	fullName := o.fullName
	if fullName == "" && !o.senderSet {
		fullName = gecosName()
	}

	in, err := readSendmailInput(stdin, o.ignoreDots)
	if errors.Is(err, errInputTooLarge) {
		return fail(exDataErr, "%v", err)
	}
	if err != nil {
		return fail(exIOErr, "reading the message from stdin: %v", err)
	}
	msg, headerRcpts, err := composeMessage(in, composeParams{
		extract: o.extract, fullName: fullName, fromAddr: fromAddr, host: host, domain: domain, now: time.Now()})
	if err != nil {
		return fail(exDataErr, "%v", err)
	}
	var rcpts []string
	for _, arg := range o.rcpts {
		addrs, err := mailhdr.ParseAddressList(arg)
		if err != nil {
			return fail(exUsage, "%q is not a recipient address", arg)
		}
		for _, a := range addrs {
			rcpts = append(rcpts, qualify(a.Address, domain))
		}
	}
	rcpts = dedupeAddrs(append(rcpts, headerRcpts...))
	if len(rcpts) == 0 {
		if o.extract {
			return fail(exUsage, "no recipients: the message has no To, Cc or Bcc address and none was given")
		}
		return fail(exUsage, "no recipients given (pass addresses, or -t to read them from the message)")
	}

	var transcript io.Writer
	if o.verbose {
		transcript = stdout
	}
	reply, err := submitSMTP(server, host, sender, rcpts, msg, transcript)
	if err != nil {
		var se *submitError
		if errors.As(err, &se) {
			if se.step == "connect" && source == builtInListeners {
				return fail(se.exitCode(), "%v; no configuration was found, so this is the built-in listener: pass --config FILE or set GRAPHRELAY_CONFIG to graphrelay's configuration, or pass --server HOST:PORT", se)
			}
			return fail(se.exitCode(), "%v", se)
		}
		return fail(exSoftware, "%v", err)
	}
	if o.verbose {
		fmt.Fprintf(stdout, "graphrelay sendmail: %s accepted the message: 250 %s\n", server, reply)
	}
	return 0
}

// parseSender accepts what -f is given: an address, "Name <address>", or
// "" / "<>" for the null sender that bounces and notices use.
func parseSender(raw, host string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "<>" {
		return "", nil
	}
	addrs, err := mailhdr.ParseAddressList(raw)
	if err != nil || len(addrs) != 1 {
		return "", usageError(fmt.Sprintf("-f %q is not one sender address", raw))
	}
	return qualify(addrs[0].Address, host), nil
}

// dedupeAddrs drops repeated addresses, compared case-insensitively, so a
// recipient named both on the command line and in To receives one copy.
func dedupeAddrs(addrs []string) []string {
	seen := map[string]bool{}
	out := addrs[:0]
	for _, a := range addrs {
		k := strings.ToLower(a)
		if a == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return out
}

// localHostName is what real sendmail puts after the user's name.
func localHostName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// loginName is the invoking user: root for cron's system jobs, www-data for
// PHP. Windows returns DOMAIN\user; the domain is no part of an address.
func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		name := u.Username
		if i := strings.LastIndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		}
		return name
	}
	for _, v := range []string{"LOGNAME", "USER", "USERNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "nobody"
}

// gecosName is the user's full name from the password database, which
// sendmail uses for the From it adds; "" when there is none.
func gecosName() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(u.Name, ",")
	if name == u.Username {
		return ""
	}
	return strings.TrimSpace(name)
}
