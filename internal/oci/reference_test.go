package oci

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRepository(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    Repository
		wantErr error
	}{
		{name: "registry and path", url: "oci://ghcr.io/org/charts/demo", want: Repository{Registry: "ghcr.io", Path: "org/charts/demo"}},
		{name: "registry with port", url: "oci://registry.example:5000/demo", want: Repository{Registry: "registry.example:5000", Path: "demo"}},
		{name: "localhost", url: "oci://localhost:5000/charts/demo", want: Repository{Registry: "localhost:5000", Path: "charts/demo"}},
		{name: "loopback", url: "oci://127.0.0.1:5000/charts/demo", want: Repository{Registry: "127.0.0.1:5000", Path: "charts/demo"}},

		{name: "no scheme", url: "ghcr.io/org/demo", wantErr: ErrInvalidReference},
		{name: "https scheme", url: "https://ghcr.io/org/demo", wantErr: ErrInvalidReference},
		{name: "uppercase scheme", url: "OCI://ghcr.io/org/demo", wantErr: ErrInvalidReference},
		{name: "tag", url: "oci://ghcr.io/org/demo:1.0.0", wantErr: ErrInvalidReference},
		{name: "digest", url: "oci://ghcr.io/org/demo@sha256:" + strings.Repeat("a", 64), wantErr: ErrInvalidReference},
		{name: "uppercase host", url: "oci://GHCR.io/org/demo", wantErr: ErrInvalidReference},
		{name: "uppercase path", url: "oci://ghcr.io/org/Demo", wantErr: ErrInvalidReference},
		{name: "implicit registry", url: "oci://org/demo", wantErr: ErrInvalidReference},
		{name: "registry alias", url: "oci://docker.io/org/demo", wantErr: ErrInvalidReference},
		{name: "registry only", url: "oci://ghcr.io", wantErr: ErrInvalidReference},
		{name: "trailing slash", url: "oci://ghcr.io/org/demo/", wantErr: ErrInvalidReference},
		{name: "path traversal", url: "oci://ghcr.io/org/../demo", wantErr: ErrInvalidReference},
		{name: "empty path component", url: "oci://ghcr.io/org//demo", wantErr: ErrInvalidReference},
		{name: "leading separator", url: "oci://ghcr.io/org/-demo", wantErr: ErrInvalidReference},
		{name: "trailing separator", url: "oci://ghcr.io/org/demo.", wantErr: ErrInvalidReference},
		{name: "triple underscore", url: "oci://ghcr.io/org/a___b", wantErr: ErrInvalidReference},
		{name: "separators", url: "oci://ghcr.io/my-org/a.b_c__d---e", want: Repository{Registry: "ghcr.io", Path: "my-org/a.b_c__d---e"}},
		{name: "userinfo", url: "oci://user:pass@ghcr.io/org/demo", wantErr: ErrInvalidReference},
		{name: "empty", url: "", wantErr: ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepository(tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRepository(%q): got error %v, want %v", tt.url, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRepository(%q): got -want +got:\n%s", tt.url, diff)
			}
			if tt.wantErr == nil && "oci://"+got.String() != tt.url {
				t.Errorf("String: got %q, want %q", got.String(), strings.TrimPrefix(tt.url, "oci://"))
			}
		})
	}
}

// TestClientRefusesUnnormalizedRepository: a Repository built by hand is
// checked as strictly as a parsed one, before any request.
func TestClientRefusesUnnormalizedRepository(t *testing.T) {
	client := NewClient(Options{})
	for _, repo := range []Repository{
		{Registry: "GHCR.io", Path: "org/demo"},
		{Registry: "ghcr.io", Path: "org/Demo"},
		{Registry: "docker.io", Path: "org/demo"},
		{Registry: "ghcr.io", Path: "org/demo:1.0.0"},
		{Registry: "", Path: "org/demo"},
		{Registry: "ghcr.io/x", Path: "org/demo"},
		{Registry: "ghcr.io", Path: "org/../demo"},
		{Registry: "ghcr.io", Path: "/org/demo"},
	} {
		_, err := client.Resolve(context.Background(), repo, "1.0.0")
		if !errors.Is(err, ErrInvalidReference) {
			t.Errorf("Resolve(%+v): got error %v, want %v", repo, err, ErrInvalidReference)
		}
	}
}

func TestCheckDigest(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		digest string
		valid  bool
	}{
		{digest: "sha256:" + hex, valid: true},
		{digest: "sha256:" + strings.ToUpper(hex)},
		{digest: "SHA256:" + hex},
		{digest: "sha512:" + hex + hex},
		{digest: "sha256:" + hex[:63]},
		{digest: "sha256:" + hex + "0"},
		{digest: "sha256-" + hex},
		{digest: " sha256:" + hex},
		{digest: "sha256:" + hex + "\n"},
		{digest: "sha256:" + hex[:63] + "g"},
		{digest: ""},
	}
	for _, tt := range tests {
		err := checkDigest(tt.digest)
		if (err == nil) != tt.valid {
			t.Errorf("checkDigest(%q): got error %v, want valid=%v", tt.digest, err, tt.valid)
		}
		if err != nil && !errors.Is(err, ErrInvalidReference) {
			t.Errorf("checkDigest(%q): got error %v, want %v", tt.digest, err, ErrInvalidReference)
		}
	}
}
