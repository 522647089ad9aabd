// Package policy is the one place where evidence becomes a verdict.
//
// Everything else in chartproof gathers facts (internal/oci reads the
// registry, internal/verify checks signatures cryptographically) or acts on
// the verdict (the reconciler installs, the CLI prints). Evaluate reads the
// facts top to bottom in a fixed order — scope, evidence gathering, digest
// pinning, signatures, identity, threshold, content — and returns a Verdict
// whose zero value is a denial. Only Evaluate can make an allow.
//
// A policy is compiled once from a TrustPolicySpec (Compile), which parses
// and checks every key and trusted root, compiles every identity (anchored
// RE2), refuses an identity that leaves issuer or subject open and refuses
// contradictory settings, so a Verdict is never computed from a policy that
// could not be fully understood. Keyless identities are judged here, not in
// internal/verify: a signature counts for a keyless authority only when its
// trusted root verified it and its certificate names one of its identities,
// and each signer (key or certificate identity) counts for one authority.
package policy
