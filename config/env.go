package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable graphrelay reads. The rest of
// the name is the YAML path in upper case joined by underscores, e.g.
// GRAPHRELAY_GRAPH_TENANT_ID for graph.tenant_id. Lists are comma-separated:
// GRAPHRELAY_MAILBOXES=alerts@example.com,scans@example.com=<object-id>.
const EnvPrefix = "GRAPHRELAY_"

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// NotSettings are GRAPHRELAY_ variables that are not configuration keys:
// the overlay leaves them alone instead of rejecting them as typos.
var NotSettings = map[string]string{
	"GRAPHRELAY_CONFIG":          "names the configuration file",
	"GRAPHRELAY_SENDMAIL_SERVER": "where graphrelay sendmail submits",
	"GRAPHRELAY_CORPUS":          "the MIME corpus directory for the tests",
	"GRAPHRELAY_REQUIRE_CLIENTS": "makes tests fail instead of skip without real clients",
}

// applyEnv overlays environment variables on cfg, because Docker and
// Kubernetes users configure that way. Unknown GRAPHRELAY_ variables are
// errors for the same reason unknown YAML keys are.
func applyEnv(cfg *Config, environ []string) Errors {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if _, skip := NotSettings[k]; ok && !skip && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs Errors
	used := map[string]bool{}
	walkFields(reflect.ValueOf(cfg).Elem(), nil, func(path []string, v reflect.Value) {
		name := EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
		raw, ok := vars[name]
		if !ok {
			return
		}
		used[name] = true
		if err := setFromString(v, raw); err != nil {
			errs.add(name, "%v", err)
		}
	})
	for name := range vars {
		if !used[name] {
			errs.add(name, "unknown environment variable (see the configuration reference in README.md)")
		}
	}
	return errs
}

// walkFields calls fn for every settable leaf: scalars, and slices, which
// are set whole from a comma-separated list.
func walkFields(v reflect.Value, path []string, fn func([]string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		f := v.Field(i)
		p := append(append([]string{}, path...), tag)
		if f.Kind() == reflect.Struct {
			walkFields(f, p, fn)
			continue
		}
		fn(p, f)
	}
}

func setFromString(v reflect.Value, raw string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", raw)
		}
		v.SetInt(n)
	case reflect.Slice:
		parts := strings.Split(raw, ",")
		s := reflect.MakeSlice(v.Type(), 0, len(parts))
		for _, p := range parts {
			if strings.TrimSpace(p) == "" {
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setFromString(e, strings.TrimSpace(p)); err != nil {
				return err
			}
			s = reflect.Append(s, e)
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
