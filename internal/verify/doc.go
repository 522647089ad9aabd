// Package verify establishes facts about the signatures of one digest.
//
// A Verifier is built once from a compiled policy's authorities. It checks a
// signature cryptographically with sigstore-go — once per key authority, and
// once per distinct trusted root of the keyless authorities — and reports
// what it found as a policy.Signature: which authority's key verified it, or
// which keyless authorities' trusted root verified it (certificate chain at
// the signing time, transparency log entry tied to the signature, observer
// timestamp, SCTs) together with the certificate's identity, the log entries
// and the signing time; and which digests the signed payload names. It does
// no I/O and judges nothing: whether the identity is trusted, whether the
// digest named is the right one, and whether enough authorities signed, is
// decided by internal/policy. The Sigstore public-good trusted root is
// embedded (package trustedroot).
//
// Collect does the I/O: it finds signatures in both layouts cosign writes —
// the legacy "sha256-<hex>.sig" tag with simple-signing payloads, and Sigstore
// bundles attached as OCI referrers — through a small Registry interface.
package verify
