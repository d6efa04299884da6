package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// entry is one user as read from the configuration or the users file, with
// where it came from, for error messages.
type entry struct {
	name, hash string
	where      string // "users[2]" or "users.yaml line 7"
}

// readUsersFile parses a YAML list of {name, password_hash} mappings. It
// walks yaml.Node instead of decoding into structs so that every problem
// carries its line, and so that an unknown key (a misspelt "password" with
// a plain-text value, say) is an error, never silently ignored. All
// problems are returned together.
func readUsersFile(path string) ([]entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users_file: %w", err)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file holds no users
		}
		return nil, fmt.Errorf("users_file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	list := doc.Content[0]
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil, nil // "~" or "null"
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("users_file %s line %d: the file must be a list of entries with name and password_hash", path, list.Line)
	}
	var (
		users []entry
		errs  []error
	)
	for _, item := range list.Content {
		e, err := parseUser(item, path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		users = append(users, e)
	}
	return users, errors.Join(errs...)
}

func parseUser(item *yaml.Node, path string) (entry, error) {
	e := entry{where: fmt.Sprintf("%s line %d", path, item.Line)}
	if item.Kind != yaml.MappingNode {
		return e, fmt.Errorf("%s: an entry must be a mapping with name and password_hash", e.where)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		var dst *string
		switch k.Value {
		case "name":
			dst = &e.name
		case "password_hash":
			dst = &e.hash
		default:
			return e, fmt.Errorf("%s line %d: unknown key %q in a user (use name and password_hash)", path, k.Line, k.Value)
		}
		if seen[k.Value] {
			return e, fmt.Errorf("%s line %d: %s is given twice", path, k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind != yaml.ScalarNode {
			return e, fmt.Errorf("%s line %d: %s must be a single value", path, v.Line, k.Value)
		}
		*dst = v.Value
	}
	return e, nil
}
