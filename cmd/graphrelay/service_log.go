package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"
)

// eventWriter is the part of the Windows event log (*eventlog.Log) that
// the service logs to. The handler depends only on it, so it is built and
// tested on every platform.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event IDs, one per level, so that an administrator can filter the
// Application log (or a SCOM/Event Forwarding rule can alert) on errors.
const (
	eventIDInfo    = 1
	eventIDWarning = 2
	eventIDError   = 3
)

// maxEventChars stays under ReportEvent's limit of 31,839 characters per
// string; a longer message would be dropped entirely.
const maxEventChars = 31000

// eventLogHandler writes each slog record as one event: the message, then
// the attributes as key=value text (the same text the console shows),
// without the time and level, which every event already carries.
type eventLogHandler struct {
	w     eventWriter
	level slog.Leveler
	// text formats a record's attributes into buf. Handlers derived by
	// WithAttrs and WithGroup share buf and mu with their parent.
	text slog.Handler
	mu   *sync.Mutex
	buf  *bytes.Buffer
}

func newEventLogHandler(w eventWriter, level slog.Leveler) *eventLogHandler {
	buf := &bytes.Buffer{}
	drop := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
			return slog.Attr{}
		}
		return a
	}
	return &eventLogHandler{
		w: w, level: level, mu: &sync.Mutex{}, buf: buf,
		text: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: drop}),
	}
}

func (h *eventLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *eventLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	err := h.text.Handle(ctx, r)
	attrs := strings.TrimSpace(h.buf.String())
	h.mu.Unlock()
	if err != nil {
		return err
	}
	msg := r.Message
	if attrs != "" {
		msg += "\r\n" + attrs
	}
	msg = truncateUTF8(msg, maxEventChars)
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Error(eventIDError, msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(eventIDWarning, msg)
	}
	return h.w.Info(eventIDInfo, msg)
}

func (h *eventLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(attrs)
	return &c
}

func (h *eventLogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + " [truncated]"
}
