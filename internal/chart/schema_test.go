package chart

import (
	"errors"
	"testing"

	"github.com/chartproof/chartproof/internal/testchart"
)

// TestLoadRefusesSchemaReferences: a values.schema.json that would make the
// controller fetch a URL or read a file is refused; its control twin, a
// schema with only local references, loads.
func TestLoadRefusesSchemaReferences(t *testing.T) {
	tests := []struct {
		name, schema string
		wantErr      bool
	}{
		{"control: local references", `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"m":{"type":"string"}},"properties":{"message":{"$ref":"#/definitions/m"}}}`, false},
		{"http reference (SSRF)", `{"properties":{"message":{"$ref":"http://169.254.169.254/latest/meta-data"}}}`, true},
		{"file reference", `{"properties":{"message":{"$ref":"file:///etc/passwd"}}}`, true},
		{"relative reference resolves to a file", `{"properties":{"message":{"$ref":"other.json"}}}`, true},
		{"unknown meta-schema is loaded", `{"$schema":"https://attacker.example/schema"}`, true},
		{"dynamic reference", `{"$dynamicRef":"https://attacker.example/x"}`, true},
		{"reference in an array", `{"allOf":[{"$ref":"https://attacker.example/x"}]}`, true},
		{"not JSON", `{`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := testchart.Files("hello", "1.0.0")
			files["values.schema.json"] = tc.schema
			archive, err := testchart.Build(testchart.Entries("hello", files))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(archive)
			if tc.wantErr && !errors.Is(err, ErrInvalidChart) {
				t.Fatalf("Load: %v, want ErrInvalidChart", err)
			}
			if !tc.wantErr && err != nil {
				t.Fatalf("Load: %v, want no error", err)
			}
		})
	}
}
