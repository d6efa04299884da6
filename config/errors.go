package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one configuration problem, tied to the key it concerns and,
// when the key came from the file, to its line.
type FieldError struct {
	Key  string
	Line int
	Msg  string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// Errors collects every problem found, so an operator fixes them all in one
// round instead of one per restart.
type Errors []FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("%d configuration problem(s):\n  %s", len(es), strings.Join(msgs, "\n  "))
}

func (es *Errors) add(key, format string, args ...any) {
	*es = append(*es, FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// attachLines fills in the line of each key that was set in the file. A key
// not in the file (a default, or an environment variable) keeps no line.
func (es Errors) attachLines(lines lineIndex, path string) {
	for i := range es {
		if l, ok := lines[es[i].Key]; ok {
			es[i].Line = l
		}
	}
}

// lineIndex maps a dotted key such as "graph.tenant_id" or "mailboxes[1]"
// to its line in the YAML file.
type lineIndex map[string]int

func indexLines(data []byte) lineIndex {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	idx := lineIndex{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				if prefix != "" {
					key = prefix + "." + key
				}
				idx[key] = n.Content[i].Line
				walk(n.Content[i+1], key)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				key := fmt.Sprintf("%s[%d]", prefix, i)
				idx[key] = c.Line
				walk(c, key)
			}
		}
	}
	walk(root.Content[0], "")
	return idx
}
