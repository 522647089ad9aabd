package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCosignKeyWithCertificate (issue 10): the real cosign v2 signs the
// chart with a key and attaches a certificate and chain for it (cosign sign
// --key --certificate --certificate-chain, legacy layout), from a CA no one
// trusts. `cosign verify --key` accepts it, and so does `chartproof verify`
// under a policy trusting that key: the certificate adds no trust and need
// not chain anywhere. Under a policy trusting another key it is refused.
func TestCosignKeyWithCertificate(t *testing.T) {
	host := startRegistry(t).Host
	digest := pushChart(t, host, chartRepo, chartVersion)
	ref := host + "/" + chartRepo + "@" + digest
	cosign := newCosign(t, tools.cosignV2, false)

	// A key of our own, imported into cosign, and a certificate for it
	// from a CA made here.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := filepath.Join(cosign.dir, "release.pem")
	writePEM(t, keyPEM, "PRIVATE KEY", der)
	cosign.mustRun("import-key-pair", "--key", keyPEM, "--output-key-prefix", "release")
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nobody's CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "release"}, EmailAddresses: []string{"release@example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &priv.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, chainFile := filepath.Join(cosign.dir, "release.crt"), filepath.Join(cosign.dir, "chain.crt")
	writePEM(t, certFile, "CERTIFICATE", leafDER)
	writePEM(t, chainFile, "CERTIFICATE", caDER)

	cosign.mustRun("sign", "--key", filepath.Join(cosign.dir, "release.key"), "--certificate", certFile, "--certificate-chain", chainFile,
		"--tlog-upload=false", "--allow-http-registry", "--yes", ref)
	pub := filepath.Join(cosign.dir, "release.pub")
	if res := cosign.run("verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref); res.code != 0 {
		t.Fatalf("cosign verify --key: %s; want exit 0", res)
	}
	if sig := legacyLayerAnnotations(t, host, digest); sig["dev.sigstore.cosign/certificate"] == "" {
		t.Fatalf("the legacy layer carries no certificate: %v", sig)
	}

	pemText, keyID := readPublicKey(t, pub)
	res, out := chartproofVerify(t, "oci://"+ref, writePolicyFile(t, host+"/"+chartRepo, pemText))
	if res.code != 0 || !out.Passed || len(out.Accepted) != 1 || out.Accepted[0].KeyID != keyID {
		t.Errorf("chartproof verify under the signing key: %s; want allowed by key %s", res, keyID)
	}
	_, otherPub := cosign.generateKeyPair("other")
	otherPEM, _ := readPublicKey(t, otherPub)
	if res, _ := chartproofVerify(t, "oci://"+ref, writePolicyFile(t, host+"/"+chartRepo, otherPEM)); res.code != 1 {
		t.Errorf("chartproof verify under another key: %s; want exit 1", res)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// legacyLayerAnnotations are the annotations of the first layer of the
// legacy .sig manifest of digest.
func legacyLayerAnnotations(t *testing.T, host, digest string) map[string]string {
	t.Helper()
	raw, err := (testsign.Registry{Host: host}).RawManifest(chartRepo, strings.Replace(digest, ":", "-", 1)+".sig")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Layers []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("legacy signature manifest: %v, %d layers", err, len(m.Layers))
	}
	return m.Layers[0].Annotations
}
