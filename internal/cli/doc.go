// Package cli implements `chartproof verify`: the same verification the
// controller runs (internal/gate), from a laptop or a CI job, with the policy
// read from a YAML file instead of the API server; `chartproof
// verify-blob`: a Sigstore bundle over any artifact, under a policy of one
// authority built from cosign's flag names, through the same verifier and
// policy evaluation; and `chartproof selftest`: a policy's false-allow rate
// against attacks built in the user's registry (internal/selftest).
package cli
