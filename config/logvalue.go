package config

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
)

// LogValue is the redacted effective configuration as nested slog groups,
// so a text log shows one readable key=value per setting
// (config.graph.tenant_id=..., config.smtp.listeners.0.address=...) instead
// of a Go map dump, and a JSON log shows nested objects. Empty strings and
// lists are left out: they are settings not in use.
func (c *Config) LogValue() slog.Value {
	return logValue(c.Redacted())
}

func logValue(v any) slog.Value {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]slog.Attr, 0, len(keys))
		for _, k := range keys {
			if empty(x[k]) {
				continue
			}
			attrs = append(attrs, slog.Attr{Key: k, Value: logValue(x[k])})
		}
		return slog.GroupValue(attrs...)
	case []any:
		if scalars(x) {
			return slog.StringValue(fmt.Sprint(x))
		}
		attrs := make([]slog.Attr, 0, len(x))
		for i, e := range x {
			attrs = append(attrs, slog.Attr{Key: strconv.Itoa(i), Value: logValue(e)})
		}
		return slog.GroupValue(attrs...)
	}
	return slog.AnyValue(v)
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// scalars reports a list of plain values (networks, recipients), which
// reads best on one line.
func scalars(list []any) bool {
	for _, e := range list {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}
