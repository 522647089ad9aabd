//go:build cli

package main

import "errors"

// runManager: this build is the command line alone.
func runManager() error {
	return errors.New("this chartproof is the command line only (built with -tags cli): it has `verify` and `verify-blob`; the manager is the full build (`make build`: bin/chartproof, or the container image)")
}
