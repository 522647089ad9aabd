// Package cli implements `chartproof verify`: the same verification the
// controller runs (internal/gate), from a laptop or a CI job, with the policy
// read from a YAML file instead of the API server.
package cli
