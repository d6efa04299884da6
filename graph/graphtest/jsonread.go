package graphtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name  string
	value json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// readObject decodes a JSON object into its members, keeping their order and
// rejecting duplicate names (compared case-insensitively, because Graph
// matches names case-insensitively and so would see two values for one
// property). It rejects trailing data after the object.
func readObject(raw []byte) ([]member, string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, "", errNotObject
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, "", err
		}
		folded := strings.ToLower(name)
		if seen[folded] {
			return nil, name, nil
		}
		seen[folded] = true
		out = append(out, member{name: name, value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("trailing data after JSON object")
	}
	return out, "", nil
}

// jsonKind classifies a raw JSON value by its first byte.
func jsonKind(v json.RawMessage) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	switch v[0] {
	case '{':
		return 'o'
	case '[':
		return 'a'
	case '"':
		return 's'
	case 't', 'f':
		return 'b'
	case 'n':
		return 'n'
	}
	return '#'
}

func isNull(v json.RawMessage) bool { return jsonKind(v) == 'n' }

// literal renders a raw value for an error message the way OData quotes
// literals, shortening long values.
func literal(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(bytes.TrimSpace(v))
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}
