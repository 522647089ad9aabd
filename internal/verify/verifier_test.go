package verify

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func newKey(t *testing.T, kind string) *testsign.Key {
	t.Helper()
	k, err := testsign.NewKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func verifierFor(t testing.TB, keys map[string]*testsign.Key) *Verifier {
	t.Helper()
	var auths []policy.Authority
	for name, k := range keys {
		pub, id, err := policy.ParsePublicKey([]byte(k.PublicPEM()))
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, policy.Authority{Name: name, PublicKey: pub, KeyID: id})
	}
	v, err := New(auths)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func legacySig(t testing.TB, k *testsign.Key, payload []byte) string {
	t.Helper()
	sig, err := k.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestLegacyEveryKeyKind(t *testing.T) {
	for _, kind := range []string{"p256", "p384", "ed25519", "rsa2048"} {
		t.Run(kind, func(t *testing.T) {
			k := newKey(t, kind)
			v := verifierFor(t, map[string]*testsign.Key{"team": k})
			payload := testsign.SimpleSigningPayload("r.example/app", digestA)
			got := v.Legacy(payload, map[string]string{SignatureAnnotation: legacySig(t, k, payload)})
			if got.Authority != "team" || !cmp.Equal(got.Subjects, []string{digestA}) {
				t.Fatalf("Legacy = %+v, want authority team naming %s", got, digestA)
			}
		})
	}
}

func TestLegacyRefusals(t *testing.T) {
	trusted, other := newKey(t, "p256"), newKey(t, "p256")
	v := verifierFor(t, map[string]*testsign.Key{"team": trusted})
	good := testsign.SimpleSigningPayload("r.example/app", digestA)
	tests := []struct {
		name          string
		payload       []byte
		signWith      *testsign.Key
		sig           string // overrides the signature when set
		tamper        func([]byte) []byte
		wantAuthority string
		wantMalformed bool
	}{
		{name: "control", payload: good, signWith: trusted, wantAuthority: "team"},
		{name: "wrong key", payload: good, signWith: other},
		{name: "payload changed after signing", payload: good, signWith: trusted, tamper: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), digestA, digestB, 1))
		}},
		{name: "signature not base64", payload: good, signWith: trusted, sig: "%%%", wantMalformed: true},
		{name: "duplicate key (BND-08)", signWith: trusted, wantMalformed: true,
			payload: []byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"` + digestA + `","docker-manifest-digest":"` + digestB + `"},"type":"cosign container image signature"},"optional":null}`)},
		{name: "case-variant key (BND-08)", signWith: trusted, wantMalformed: true,
			payload: []byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"` + digestA + `","Docker-Manifest-Digest":"` + digestB + `"},"type":"cosign container image signature"},"optional":null}`)},
		{name: "unknown critical field", signWith: trusted, wantMalformed: true,
			payload: []byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"` + digestA + `"},"type":"cosign container image signature","extra":1},"optional":null}`)},
		{name: "trailing data", signWith: trusted, wantMalformed: true, payload: append(append([]byte{}, good...), []byte(` {}`)...)},
		{name: "uppercase digest (REG-07)", signWith: trusted, wantMalformed: true,
			payload: testsign.SimpleSigningPayload("r.example/app", strings.ToUpper(digestA))},
		{name: "wrong type", signWith: trusted, wantMalformed: true,
			payload: []byte(strings.Replace(string(good), "cosign container image signature", "something else", 1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.sig
			if sig == "" {
				sig = legacySig(t, tc.signWith, tc.payload)
			}
			payload := tc.payload
			if tc.tamper != nil {
				payload = tc.tamper(payload)
			}
			got := v.Legacy(payload, map[string]string{SignatureAnnotation: sig})
			if got.Authority != tc.wantAuthority || got.Malformed != tc.wantMalformed {
				t.Fatalf("Legacy = %+v, want authority %q, malformed %v", got, tc.wantAuthority, tc.wantMalformed)
			}
			if got.Authority == "" && got.Problem == "" {
				t.Fatal("a refused signature without a problem")
			}
		})
	}
}

func TestBundle(t *testing.T) {
	trusted, other := newKey(t, "p256"), newKey(t, "p256")
	v := verifierFor(t, map[string]*testsign.Key{"team": trusted})
	mustBundle := func(stmt []byte, k *testsign.Key) []byte {
		b, err := testsign.Bundle(stmt, k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	attestation := []byte(strings.Replace(string(testsign.Statement("app", digestA)), CosignSignPredicate, "https://slsa.dev/provenance/v1", 1))
	tests := []struct {
		name          string
		bundle        []byte
		wantOK        bool
		wantAuthority string
		wantSubjects  []string
		wantMalformed bool
	}{
		{name: "control", bundle: mustBundle(testsign.Statement("app", digestA), trusted), wantOK: true, wantAuthority: "team", wantSubjects: []string{digestA}},
		{name: "wrong key", bundle: mustBundle(testsign.Statement("app", digestA), other), wantOK: true},
		{name: "statement for another digest names it", bundle: mustBundle(testsign.Statement("app", digestB), trusted), wantOK: true, wantAuthority: "team", wantSubjects: []string{digestB}},
		{name: "attestation is not a signature", bundle: mustBundle(attestation, trusted)},
		{name: "not JSON", bundle: []byte("{"), wantOK: true, wantMalformed: true},
		// BND-10: hints, key IDs and certificates in the bundle decide nothing.
		{name: "hint names the trusted key, another key signed (BND-10)", bundle: withHintOf(t, mustBundle(testsign.Statement("app", digestA), other), trusted), wantOK: true},
		{name: "control: hint of the trusted key, the trusted key signed", bundle: withHintOf(t, mustBundle(testsign.Statement("app", digestA), trusted), trusted), wantOK: true, wantAuthority: "team", wantSubjects: []string{digestA}},
		{name: "bundle with a certificate under a keyed policy (BND-10)", bundle: keylessBundle(t, testsign.Statement("app", digestA)), wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := v.Bundle(tc.bundle)
			if ok != tc.wantOK || got.Authority != tc.wantAuthority || got.Malformed != tc.wantMalformed || !cmp.Equal(got.Subjects, tc.wantSubjects) {
				t.Fatalf("Bundle = %+v, %v; want authority %q subjects %v malformed %v, ok %v", got, ok, tc.wantAuthority, tc.wantSubjects, tc.wantMalformed, tc.wantOK)
			}
		})
	}
}

func FuzzParseSimpleSigning(f *testing.F) {
	f.Add(testsign.SimpleSigningPayload("r.example/app", digestA))
	f.Add([]byte(`{"critical":{"image":{"docker-manifest-digest":"x"}}}`))
	f.Add([]byte(`[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseSimpleSigning(data)
		if err == nil && !policy.CanonicalDigest(d) {
			t.Fatalf("parseSimpleSigning accepted a non-canonical digest %q", d)
		}
	})
}

// withHintOf rewrites a keyed bundle's public-key hint to name k.
func withHintOf(t *testing.T, b []byte, k *testsign.Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["verificationMaterial"].(map[string]any)["publicKey"] = map[string]any{"hint": base64.StdEncoding.EncodeToString(sum[:])}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keylessBundle is a keyless bundle over statement from a throwaway
// Sigstore.
func keylessBundle(t *testing.T, statement []byte) []byte {
	t.Helper()
	b, err := newSigstore(t).SignKeyless(statement, testsign.KeylessOptions{Cert: ghCert()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfSignedPEM is a self-signed certificate for k's public key, chaining
// nowhere, with identity subject.
func selfSignedPEM(t *testing.T, k *testsign.Key, subject string) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: subject}, EmailAddresses: []string{subject},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Signer.Public(), k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestLegacyKeyWithCertificate (issue 10, BND-10): a legacy signature made
// with a key and carrying a certificate (cosign sign --key --certificate
// --certificate-chain) counts for the key authority whose key verifies it,
// as `cosign verify --key` counts it; the certificate, self-signed here,
// adds no trust and need not chain anywhere. Refusals: another key signed,
// whatever certificate it carries (its own, or one for the trusted key).
func TestLegacyKeyWithCertificate(t *testing.T) {
	trusted, other := newKey(t, "p256"), newKey(t, "p256")
	v := verifierFor(t, map[string]*testsign.Key{"team": trusted})
	payload := testsign.SimpleSigningPayload("r.example/app", digestA)
	for _, tc := range []struct {
		name          string
		signWith      *testsign.Key
		cert          string
		wantAuthority string
	}{
		{"trusted key, its own certificate", trusted, selfSignedPEM(t, trusted, "release@example.com"), "team"},
		{"trusted key, with a certificate and chain of nowhere", trusted, selfSignedPEM(t, trusted, "anyone@evil.example"), "team"},
		{"control: trusted key, no certificate", trusted, "", "team"},
		{"another key, its own certificate (BND-10)", other, selfSignedPEM(t, other, "release@example.com"), ""},
		{"another key, the trusted key's certificate (BND-10)", other, selfSignedPEM(t, trusted, "release@example.com"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{SignatureAnnotation: legacySig(t, tc.signWith, payload)}
			if tc.cert != "" {
				ann[CertificateAnnotation], ann[ChainAnnotation] = tc.cert, tc.cert
			}
			got := v.Legacy(payload, ann)
			if got.Authority != tc.wantAuthority || got.Malformed {
				t.Fatalf("Legacy = %+v, want authority %q", got, tc.wantAuthority)
			}
			if got.Authority != "" && !cmp.Equal(got.Subjects, []string{digestA}) {
				t.Errorf("Subjects = %v; want %s", got.Subjects, digestA)
			}
		})
	}
}
