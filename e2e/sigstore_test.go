package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sigstore is a throwaway keyless Sigstore on loopback: two OIDC issuers
// of our own, Fulcio with an ephemeral CA trusting them, Rekor v2
// (rekor-tiles, POSIX storage) and a timestamp authority, all stopped when
// the test ends; and the trusted root and signing config `cosign
// trusted-root create` and `cosign signing-config create` write for them.
// There is no CT log: Fulcio's certificates carry no SCT, and the trusted
// root lists no CT log.
type sigstore struct {
	email *oidcIssuer // vouches for email addresses (Fulcio's "email" type)
	uri   *oidcIssuer // vouches for URIs on its host, as a CI system does (Fulcio's "uri" type)

	trustedRoot   string // trusted_root.json: Fulcio's CA, Rekor's key, the TSA's chain
	signingConfig string // where cosign signs: Fulcio, Rekor v2 and the TSA
}

// startSigstore starts a keyless Sigstore for the test, with cosign (v3)
// describing it. It takes about a second.
func startSigstore(t *testing.T, cosign *cosignCLI) *sigstore {
	t.Helper()
	dir := t.TempDir()
	s := &sigstore{
		email:         startOIDCIssuer(t, true),
		uri:           startOIDCIssuer(t, false),
		trustedRoot:   filepath.Join(dir, "trusted_root.json"),
		signingConfig: filepath.Join(dir, "signing_config.json"),
	}
	fulcioURL := startFulcio(t, dir, s.email, s.uri)
	rekorURL, rekorPub := startRekor(t, dir)
	tsaURL := startTSA(t)

	fulcioChain := filepath.Join(dir, "fulcio-chain.pem")
	writeFile(t, fulcioChain, mustGet(t, fulcioURL+"/api/v1/rootCert"))
	tsaChain := filepath.Join(dir, "tsa-chain.pem")
	writeFile(t, tsaChain, mustGet(t, tsaURL+"/certchain"))

	// The services are valid from an hour ago, before any certificate or
	// timestamp they issue.
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	cosign.mustRun("trusted-root", "create",
		"--fulcio=url="+fulcioURL+",certificate-chain="+fulcioChain,
		// The checkpoint origin is the log's host name: sigstore-go checks
		// checkpoints against the host of the log's URL.
		"--rekor=url="+rekorURL+",public-key="+rekorPub+",start-time="+start+",origin=127.0.0.1",
		"--tsa=url="+tsaURL+",certificate-chain="+tsaChain,
		"--out", s.trustedRoot)
	cosign.mustRun("signing-config", "create",
		"--fulcio=url="+fulcioURL+",api-version=1,start-time="+start+",operator=chartproof-e2e",
		"--rekor=url="+rekorURL+",api-version=2,start-time="+start+",operator=chartproof-e2e", "--rekor-config=ANY",
		"--tsa=url="+tsaURL+",api-version=1,start-time="+start+",operator=chartproof-e2e", "--tsa-config=ANY",
		"--out", s.signingConfig)
	return s
}

// startFulcio runs Fulcio with an ephemeral CA, without a CT log, trusting
// issuers (client ID "sigstore"), and returns its URL once it serves its
// root certificate.
func startFulcio(t *testing.T, dir string, issuers ...*oidcIssuer) string {
	t.Helper()
	trusted := map[string]any{}
	for _, iss := range issuers {
		trusted[iss.URL] = iss.fulcioConfig()
	}
	config, err := json.Marshal(map[string]any{"OIDCIssuers": trusted})
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "fulcio.json")
	writeFile(t, configPath, config)
	addr, grpcAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(tools.fulcio, "serve",
		"--ca=ephemeralca", "--ct-log-url=", "--config-path="+configPath,
		"--host=127.0.0.1", "--port="+port(t, addr),
		"--grpc-host=127.0.0.1", "--grpc-port="+port(t, grpcAddr),
		"--metrics-port="+port(t, metricsAddr),
		// Its default is an abstract socket name shared by every Fulcio on
		// the machine.
		"--legacy-unix-domain-socket="+filepath.Join(dir, "fulcio-legacy.sock"),
	)
	cmd.Env = isolatedEnv(t)
	url := "http://" + addr
	waitHTTP(t, 30*time.Second, url+"/api/v1/rootCert", startProcess(t, "fulcio", cmd))
	return url
}

// startRekor runs Rekor v2 (rekor-tiles with POSIX storage) with a new
// ECDSA P-256 signing key, and returns its URL once it is healthy and the
// path of its public key (PEM).
func startRekor(t *testing.T, dir string) (url, publicKey string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "rekor.key")
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if der, err = x509.MarshalPKIXPublicKey(key.Public()); err != nil {
		t.Fatal(err)
	}
	publicKey = filepath.Join(dir, "rekor.pub")
	writeFile(t, publicKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	addr, grpcAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(tools.rekor, "serve",
		// The checkpoint origin: it must be the host of the log's URL in
		// the trusted root.
		"--hostname=127.0.0.1",
		"--http-address=127.0.0.1", "--http-port="+port(t, addr),
		"--grpc-address=127.0.0.1", "--grpc-port="+port(t, grpcAddr),
		"--http-metrics-port="+port(t, metricsAddr),
		"--storage-dir="+filepath.Join(dir, "rekor-tiles"),
		"--signer-filepath="+keyPath,
		// An entry is answered once a published checkpoint covers it (the
		// server looks every second): publish one often, not every 10 s.
		"--checkpoint-interval=100ms", "--batch-max-age=10ms",
		"--log-level=warn",
	)
	cmd.Env = isolatedEnv(t)
	url = "http://" + addr
	waitHTTP(t, 30*time.Second, url+"/healthz", startProcess(t, "rekor", cmd))
	return url, publicKey
}

// startTSA runs the timestamp authority with an in-memory signer and
// returns its timestamp URL (…/api/v1/timestamp) once it serves its
// certificate chain.
//
// timestamp-server v1.2.9 always serves its metrics on :2112, a port no
// flag changes, and exits when that port is taken. So one TSA runs at a
// time on the machine: startTSA holds an exclusive lock while its TSA runs,
// and waits for any other test binary's TSA to stop.
func startTSA(t *testing.T) string {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "chartproof-e2e-tsa-metrics-2112.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Close() }) // releases the lock; runs after the TSA has stopped

	addr := freeAddr(t)
	cmd := exec.Command(tools.tsa, "serve",
		"--timestamp-signer=memory",
		"--host=127.0.0.1", "--port="+port(t, addr),
		"--disable-ntp-monitoring", // NTP servers are out of reach
	)
	cmd.Env = isolatedEnv(t)
	url := "http://" + addr + "/api/v1/timestamp"
	waitHTTP(t, 30*time.Second, url+"/certchain", startProcess(t, "timestamp-server", cmd))
	return url
}

// oidcIssuer is an OpenID Connect issuer on loopback, over plain HTTP:
// discovery and JWKS, and ID tokens it mints for the test (RS256, audience
// "sigstore", as Fulcio's configuration expects).
type oidcIssuer struct {
	URL   string // the issuer, http://127.0.0.1:port
	key   *rsa.PrivateKey
	email bool // its tokens name a verified email address, else a URI (sub)
}

const oidcKeyID = "chartproof-e2e"

// startOIDCIssuer starts an issuer of email identities, or of URIs.
func startOIDCIssuer(t *testing.T, email bool) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{key: key, email: email}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/keys",
			"authorization_endpoint":                iss.URL + "/auth", // required by the spec; unused
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": oidcKeyID,
			"n": b64(key.N.Bytes()),
			"e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return iss
}

// fulcioConfig is the issuer's entry in Fulcio's configuration.
func (iss *oidcIssuer) fulcioConfig() map[string]string {
	if iss.email {
		// The subject is the claim email; email_verified must be true.
		return map[string]string{"IssuerURL": iss.URL, "ClientID": "sigstore", "Type": "email"}
	}
	// The subject is the claim sub, a URI on the issuer's host.
	return map[string]string{"IssuerURL": iss.URL, "ClientID": "sigstore", "Type": "uri", "SubjectDomain": iss.URL}
}

// token mints an ID token for subject (an email address or a URI, as the
// issuer vouches for), valid for ten minutes.
func (iss *oidcIssuer) token(t *testing.T, subject string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": iss.URL,
		"sub": subject,
		"aud": "sigstore",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
	if iss.email {
		claims["email"], claims["email_verified"] = subject, true
	}
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": oidcKeyID})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, iss.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// port is the port of a host:port address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mustGet fetches url on loopback and fails the test unless it answers 200.
func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	code, body, err := httpGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200\n%s", url, code, body)
	}
	return body
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
