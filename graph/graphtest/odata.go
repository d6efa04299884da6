package graphtest

import (
	"encoding/json"
	"strings"
)

// Errors of the OData reader, which Graph returns with code RequestBodyRead.
func errUnknownProperty(name, typ string) *graphError {
	return badRequest("RequestBodyRead", "The property '%s' does not exist on type '%s'. Make sure to only use property names that are defined by the type or mark the type as open type.", name, typ)
}

func errReadOnly(name, typ string) *graphError {
	return badRequest("RequestBodyRead", "The property '%s' on type '%s' is read-only and cannot be set by the client.", name, typ)
}

func errLiteral(v json.RawMessage, edmType string) *graphError {
	return badRequest("RequestBodyRead", "Cannot convert the literal '%s' to the expected type '%s'.", literal(v), edmType)
}

func errNode(found, expected byte) *graphError {
	names := map[byte]string{'o': "StartObject", 'a': "StartArray"}
	f, ok := names[found]
	if !ok {
		f = "PrimitiveValue"
	}
	return badRequest("RequestBodyRead", "An unexpected '%s' node was found when reading from the JSON reader. A '%s' node was expected.", f, names[expected])
}

func errDuplicate(name string) *graphError {
	return badRequest("RequestBodyRead", "Multiple property values were found for the property '%s'.", name)
}

// objectMembers reads v, which must be a JSON object, into its members.
func objectMembers(v json.RawMessage) ([]member, *graphError) {
	if k := jsonKind(v); k != 'o' {
		return nil, errNode(k, 'o')
	}
	ms, dup, err := readObject(v)
	if err != nil {
		return nil, badRequest("BadRequest", invalidJSONMessage)
	}
	if dup != "" {
		return nil, errDuplicate(dup)
	}
	return ms, nil
}

// arrayItems reads v as a JSON array; null yields no items.
func arrayItems(v json.RawMessage) ([]json.RawMessage, *graphError) {
	if isNull(v) {
		return nil, nil
	}
	if k := jsonKind(v); k != 'a' {
		return nil, errNode(k, 'a')
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, badRequest("BadRequest", invalidJSONMessage)
	}
	return items, nil
}

// stringValue reads an Edm.String that may be null.
func stringValue(v json.RawMessage) (string, *graphError) {
	switch jsonKind(v) {
	case 'n':
		return "", nil
	case 's':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", badRequest("BadRequest", invalidJSONMessage)
		}
		return s, nil
	}
	return "", errLiteral(v, "Edm.String")
}

// boolValue reads an Edm.Boolean property. Only JSON true/false (or null)
// are accepted: the string form that sendMail tolerates for its
// SaveToSentItems parameter is not accepted for entity properties.
func boolValue(v json.RawMessage) (bool, *graphError) {
	switch jsonKind(v) {
	case 'n':
		return false, nil
	case 'b':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return false, badRequest("BadRequest", invalidJSONMessage)
		}
		return b, nil
	}
	return false, errLiteral(v, "Edm.Boolean")
}

// enumValue reads an enum member, matched case-insensitively as Graph does
// (the docs send "HTML" and "Low" for members defined as html and low).
func enumValue(v json.RawMessage, enumType string, members ...string) (string, *graphError) {
	if jsonKind(v) != 's' {
		if isNull(v) {
			return "", nil
		}
		return "", errLiteral(v, enumType)
	}
	s, gerr := stringValue(v)
	if gerr != nil {
		return "", gerr
	}
	for _, m := range members {
		if strings.EqualFold(s, m) {
			return m, nil
		}
	}
	return "", errLiteral(v, enumType)
}

// isAnnotation reports whether a member name is an OData annotation rather
// than a property. Only @odata.type is meaningful to the fake; property
// annotations such as "categories@odata.type" are legal and ignored.
func isAnnotation(name string) bool {
	return strings.Contains(name, "@") && !strings.EqualFold(name, "@odata.type")
}

// checkODataType accepts an @odata.type annotation naming typ.
func checkODataType(v json.RawMessage, typ string) *graphError {
	s, gerr := stringValue(v)
	if gerr != nil {
		return gerr
	}
	if !strings.EqualFold(strings.TrimPrefix(s, "#"), typ) {
		return badRequest("RequestBodyRead", "A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", s)
	}
	return nil
}
