package config

import (
	"bytes"
	"encoding/json"
	"reflect"
)

var secretType = reflect.TypeFor[Secret]()

// Redacted returns the configuration as a JSON-ready map for the startup
// log line, with every Secret replaced, so the effective configuration can
// be logged in full without leaking credentials.
func (c *Config) Redacted() map[string]any {
	cp := *c
	redactValue(reflect.ValueOf(&cp).Elem())
	b, err := json.Marshal(toYAMLNames(reflect.ValueOf(cp)))
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	// UseNumber keeps byte sizes as integers in the log instead of floats.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	_ = dec.Decode(&out)
	return out
}

func redactValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			redactValue(v.Field(i))
		}
	case reflect.String:
		if v.Type() == secretType && v.String() != "" && v.CanSet() {
			v.SetString("[redacted]")
		}
	}
}

// toYAMLNames rebuilds v as maps keyed by the yaml tags, so the log line
// uses the same names as the configuration file.
func toYAMLNames(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		if d, ok := v.Interface().(Duration); ok {
			return d.D().String()
		}
		m := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			tag := t.Field(i).Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			m[tag] = toYAMLNames(v.Field(i))
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = toYAMLNames(v.Index(i))
		}
		return out
	case reflect.Int64:
		if d, ok := v.Interface().(Duration); ok {
			return d.D().String()
		}
	}
	return v.Interface()
}
