//go:build fallbackroots

package main

// Mozilla's root certificates, compiled in, for where the system has none:
// the container image holds no CA bundle, so hack/image builds with
// -tags fallbackroots, and a registry or TUF repository over HTTPS is still
// reachable. Where the system has roots (SSL_CERT_FILE, SSL_CERT_DIR,
// /etc/ssl/certs), Go uses those and not these. Other builds leave it out:
// the package parses every certificate at start-up, which the command line
// on a laptop or in CI does not need.
import _ "golang.org/x/crypto/x509roots/fallback"
