package strictjson

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  bool
	}{
		{"control: plain object", `{"a":1,"b":[1,{"c":2}]}`, false},
		{"control: same key in different objects", `{"a":{"k":1},"b":{"k":2}}`, false},
		{"duplicate key", `{"a":1,"a":2}`, true},
		{"duplicate key differing in case", `{"digest":1,"Digest":2}`, true},
		{"duplicate key by Unicode folding (long s)", `{"s":1,"ſ":2}`, true},
		{"duplicate key by Unicode folding (Kelvin sign)", `{"k":1,"K":2}`, true},
		{"trailing data", `{"a":1} {}`, true},
		{"nested too deeply", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), true},
		{"control: nested to the limit", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), false},
		{"not JSON", `{`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check([]byte(tc.in)); (err != nil) != tc.wantErr {
				t.Fatalf("Check(%q) = %v, want error %v", tc.in, err, tc.wantErr)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,{"c":2}]}`))
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Check(data) // must not panic or hang
	})
}
