package main

// Mozilla's root certificates, compiled in, for where the system has none:
// the container image holds no CA bundle (hack/image), and a registry or
// TUF repository over HTTPS must still be reachable. Where the system has
// roots (SSL_CERT_FILE, SSL_CERT_DIR, /etc/ssl/certs), Go uses those and
// not these.
import _ "golang.org/x/crypto/x509roots/fallback"
