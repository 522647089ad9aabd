package controllers

import (
	"reflect"
	"testing"
)

// TestSetPath: valuesFrom[].targetPath sets a key's content at a path,
// typed as Helm's --set types it unless quoted; the content never reaches
// Helm's parser, so a comma or an equals sign in it sets nothing else.
func TestSetPath(t *testing.T) {
	for _, tc := range []struct {
		name, path, content string
		want                map[string]any
	}{
		{"an integer, merged beside what is there", "a.b", "3", map[string]any{"a": map[string]any{"b": int64(3), "c": "kept"}}},
		{"a boolean", "a.b", "true", map[string]any{"a": map[string]any{"b": true, "c": "kept"}}},
		{"null", "a.b", "null", map[string]any{"a": map[string]any{"b": nil, "c": "kept"}}},
		{"a leading zero stays a string", "a.b", "007", map[string]any{"a": map[string]any{"b": "007", "c": "kept"}}},
		{"quoted: the string inside", "a.b", "'3'", map[string]any{"a": map[string]any{"b": "3", "c": "kept"}}},
		{"a comma and an equals sign set nothing else", "a.b", "x,a.c=evil", map[string]any{"a": map[string]any{"b": "x,a.c=evil", "c": "kept"}}},
		{"a multi-line string", "a.b", "line 1\nline 2\n", map[string]any{"a": map[string]any{"b": "line 1\nline 2\n", "c": "kept"}}},
		{"a list index", "a.l[1]", "y", map[string]any{"a": map[string]any{"c": "kept", "l": []any{nil, "y"}}}},
		{"an escaped dot", `a.x\.y`, "z", map[string]any{"a": map[string]any{"c": "kept", "x.y": "z"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]any{"a": map[string]any{"c": "kept"}}
			if err := setPath(values, tc.path, tc.content); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(values, tc.want) {
				t.Errorf("got %#v, want %#v", values, tc.want)
			}
		})
	}
	if err := setPath(map[string]any{}, "a[", "x"); err == nil {
		t.Error("a malformed path: no error")
	}
}
