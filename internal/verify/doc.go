// Package verify establishes facts about the signatures of one digest.
//
// A Verifier is built once from a compiled policy's authorities. It checks a
// signature cryptographically with sigstore-go, once per authority, and
// reports what it found as a policy.Signature: which authority's key verified
// it, and which digests the signed payload names. It does no I/O and judges
// nothing: whether the digest named is the right one, and whether enough
// authorities signed, is decided by internal/policy.
//
// Collect does the I/O: it finds signatures in both layouts cosign writes —
// the legacy "sha256-<hex>.sig" tag with simple-signing payloads, and Sigstore
// bundles attached as OCI referrers — through a small Registry interface.
package verify
