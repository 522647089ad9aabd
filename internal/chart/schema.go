package chart

import (
	"bytes"
	"encoding/json"
	"strings"
)

// metaSchemas are the JSON Schema dialects Helm's validator knows without
// loading anything.
var metaSchemas = map[string]bool{
	"http://json-schema.org/draft-04/schema#":      true,
	"http://json-schema.org/draft-06/schema#":      true,
	"http://json-schema.org/draft-07/schema#":      true,
	"https://json-schema.org/draft/2019-09/schema": true,
	"https://json-schema.org/draft/2020-12/schema": true,
	"http://json-schema.org/draft-04/schema":       true,
	"http://json-schema.org/draft-06/schema":       true,
	"http://json-schema.org/draft-07/schema":       true,
}

// checkSchema refuses a values.schema.json that would make the controller
// read anything outside the chart. Helm validates values against it with
// loaders for file://, http:// and https:// references, so a "$ref" to
// "http://169.254.169.254/..." or "file:///etc/..." — or a relative one,
// which resolves against file:///values.schema.json — would be fetched by
// the controller during an install. Only references inside the schema
// ("#...") and the well-known meta-schemas are allowed.
func checkSchema(at string, schema []byte) error {
	if len(bytes.TrimSpace(schema)) == 0 {
		return nil
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return invalidf(at, "not JSON: %v", err)
	}
	return walkSchema(at, doc, 0)
}

func walkSchema(at string, v any, depth int) error {
	if depth > 64 {
		return invalidf(at, "nested more than 64 levels")
	}
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok {
				switch k {
				case "$ref", "$dynamicRef", "$recursiveRef":
					if !strings.HasPrefix(s, "#") {
						return invalidf(at, "%s %q points outside the schema; only local references (#...) are allowed", k, s)
					}
				case "$schema":
					if !metaSchemas[s] {
						return invalidf(at, "$schema %q is not a well-known JSON Schema dialect", s)
					}
				}
			}
			if err := walkSchema(at, child, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range t {
			if err := walkSchema(at, child, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
