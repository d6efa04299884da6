package floor

import (
	"fmt"
	"io"
	"net"

	"github.com/emersion/go-smtp"

	"github.com/graphrelay/graphrelay/config"
)

// Kinds are the servers New makes.
var Kinds = []string{"bare", "durable"}

// Options configure one floor server.
type Options struct {
	// Kind is "bare" or "durable".
	Kind string
	// Dir holds the durable server's tmp/ and q/; the bare one ignores it.
	Dir string
	// Queued, when set, is called with the path of each message in q/
	// once it and q/ are fsynced, before the 250: tests read the file
	// there. The file is removed after the 250.
	Queued func(path string)
}

// New returns a go-smtp server of the kind asked for, with graphrelay's
// default limits and timeouts (config.Default), no AUTH and no TLS
// offered, as graphrelay's default listener.
func New(o Options) (*smtp.Server, error) {
	var be smtp.Backend
	switch o.Kind {
	case "bare":
		be = smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{}, nil })
	case "durable":
		sp, err := openSpool(o.Dir)
		if err != nil {
			return nil, err
		}
		sp.queued = o.Queued
		be = smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &durableSession{spool: sp}, nil })
	default:
		return nil, fmt.Errorf("floor server kind %q: want bare or durable", o.Kind)
	}
	def := config.Default().SMTP
	srv := smtp.NewServer(be)
	srv.Domain = "floor.localhost"
	srv.MaxMessageBytes = def.MaxMessageBytes
	srv.MaxRecipients = def.MaxRecipients
	srv.MaxLineLength = def.MaxLineLength
	srv.ReadTimeout = def.ReadTimeout.D()
	srv.WriteTimeout = def.WriteTimeout.D()
	srv.EnableSMTPUTF8 = true
	return srv, nil
}

// Listen opens a TCP listener as graphrelay's are opened: on Linux,
// keep-alive is set once on the listening socket, which accepted sockets
// inherit, instead of by four setsockopt calls per connection.
func Listen(addr string) (net.Listener, error) { return listenConfig().Listen(bg, "tcp", addr) }

// session is the bare server's: it accepts every sender and recipient and
// discards the message, so that its 250 costs only go-smtp's dialogue.
type session struct{}

func (*session) Reset()                               {}
func (*session) Logout() error                        { return nil }
func (*session) Mail(string, *smtp.MailOptions) error { return nil }
func (*session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*session) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
