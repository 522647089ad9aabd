// Package oci reads Helm charts and their signatures from OCI registries,
// trusting nothing the registry says about the bytes it serves.
//
// Every manifest and blob is read through a size cap from
// [github.com/chartproof/chartproof/internal/limits], and its sha256 is
// computed over the body and compared with the digest that was asked for
// before any byte is returned. The Docker-Content-Digest header is never
// used. Tag listings and referrers are followed page by page up to a cap,
// so a registry whose Link headers loop cannot keep a call running.
//
// A [Client] talks HTTPS only, unless [Options.PlainHTTP] asks for plain
// HTTP explicitly; there is never a fallback from one to the other.
// Authentication is go-containerregistry's: a token or basic-auth handshake
// with pull scope, credentials from an [authn.Keychain].
//
// Every error of a registry call or a parser wraps exactly one sentinel, so a
// caller can tell "the registry said no" ([ErrNotFound], [ErrUnauthorized]),
// "what it served is refused" ([ErrDigestMismatch], [ErrInvalidManifest],
// [ErrLimitExceeded]) and "it could not be asked" ([ErrUnavailable]) apart.
//
// [ParseChartManifest] checks the shape of a Helm chart manifest: one Helm
// config, exactly one chart layer and at most one provenance layer, so that
// what is verified is what Helm installs.
package oci
