package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	fluxoci "github.com/fluxcd/pkg/oci"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Repository is a normalized chart repository: Registry "host[:port]"
// (lowercase) and Path "path/name".
type Repository struct {
	Registry string
	Path     string
}

// String returns "host[:port]/path/name".
func (r Repository) String() string {
	return r.Registry + "/" + r.Path
}

// ParseRepository parses "oci://host[:port]/path/name". It is strict: the
// oci:// scheme is required, the registry must be explicit, the URL must be
// lowercase and must not carry a tag or a digest.
func ParseRepository(url string) (Repository, error) {
	rest, ok := strings.CutPrefix(url, fluxoci.OCIRepositoryPrefix)
	if !ok {
		return Repository{}, fmt.Errorf("%w: %q: want oci://host[:port]/path/name", ErrInvalidReference, url)
	}
	// ParseRepositoryURL drops a tag or a digest and expands aliases
	// (docker.io, an implicit registry); anything it changes means the URL
	// was not a bare, canonical repository.
	parsed, err := fluxoci.ParseRepositoryURL(url)
	if err != nil {
		return Repository{}, fmt.Errorf("%w: %q: %w", ErrInvalidReference, url, err)
	}
	if parsed != rest {
		return Repository{}, fmt.Errorf("%w: %q: want a canonical repository (%s), without tag or digest", ErrInvalidReference, url, parsed)
	}
	ref, err := nameRepository(rest, false)
	if err != nil {
		return Repository{}, err
	}
	return Repository{Registry: ref.RegistryStr(), Path: ref.RepositoryStr()}, nil
}

// nameRepository validates "host[:port]/path/name" with go-containerregistry's
// strict rules. plainHTTP marks the registry as reachable over plain HTTP.
func nameRepository(s string, plainHTTP bool) (name.Repository, error) {
	if s != strings.ToLower(s) {
		return name.Repository{}, fmt.Errorf("%w: %q: must be lowercase", ErrInvalidReference, s)
	}
	opts := []name.Option{name.StrictValidation}
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewRepository(s, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: %q: %w", ErrInvalidReference, s, err)
	}
	// go-containerregistry checks characters only; "org/../demo" or
	// "org//demo" would reach the registry as another repository than the
	// one a policy scope was matched against.
	for _, component := range strings.Split(ref.RepositoryStr(), "/") {
		if !validPathComponent(component) {
			return name.Repository{}, fmt.Errorf("%w: %q: path component %q is not [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*", ErrInvalidReference, s, component)
		}
	}
	return ref, nil
}

// validPathComponent reports whether c matches the OCI distribution grammar
// of one repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validPathComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && ('a' <= c[i] && c[i] <= 'z' || '0' <= c[i] && c[i] <= '9') {
			i++
		}
		if i == start {
			return false // empty, or a separator not between alphanumerics
		}
		if i == len(c) {
			return true
		}
		switch {
		case c[i] == '.':
			i++
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '_':
			i++
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

// checkDigest accepts only the canonical form "sha256:" followed by 64
// lowercase hex digits.
func checkDigest(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 2*sha256.Size || strings.Trim(h, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: digest %q: want sha256:<64 lowercase hex>", ErrInvalidReference, d)
	}
	return nil
}

// checkHash is checkDigest for a descriptor's digest.
func checkHash(h v1.Hash) error {
	return checkDigest(h.String())
}

// digestOf returns the canonical sha256 digest of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkTag accepts the OCI tag grammar [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func checkTag(tag string) error {
	ok := len(tag) > 0 && len(tag) <= 128 && tag[0] != '.' && tag[0] != '-'
	for i := 0; ok && i < len(tag); i++ {
		c := tag[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: tag %q", ErrInvalidReference, tag)
	}
	return nil
}

// fallbackTag is the OCI referrers tag schema "sha256-<hex>" for a digest
// that passed checkDigest.
func fallbackTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1)
}
