package verify_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

var provArchive = []byte("the bytes of hello-0.1.0.tgz")

func provSum() string {
	s := sha256.Sum256(provArchive)
	return "sha256:" + hex.EncodeToString(s[:])
}

// provVerifier trusts the keys of ring whose fingerprints are allowed.
func provVerifier(t *testing.T, ring []*testsign.PGPKey, allowed ...*testsign.PGPKey) *verify.Verifier {
	t.Helper()
	var fps []string
	for _, k := range allowed {
		fps = append(fps, k.Fingerprint())
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{"registry.example/charts/**"},
		Authorities: []chartproofv1.Authority{{Name: "helm", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
			PublicKeys: testsign.ArmoredKeyring(ring...), Fingerprints: fps,
		}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pgpKey(t *testing.T, name string, o testsign.PGPKeyOptions) *testsign.PGPKey {
	t.Helper()
	k, err := testsign.NewPGPKey(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func clearSign(t *testing.T, k *testsign.PGPKey, text []byte, o testsign.ClearSignOptions) []byte {
	t.Helper()
	prov, err := k.ClearSign(text, o)
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

func helloText() []byte {
	return testsign.ProvenanceText("hello", "0.1.0", "hello-0.1.0.tgz", provArchive)
}

// accepted fails unless the allowed key's authority verified sig, with the
// facts of the hello chart.
func accepted(t *testing.T, sig policy.Signature, k *testsign.PGPKey) {
	t.Helper()
	if sig.Authority != "helm" || sig.KeyID != k.Fingerprint() || sig.Malformed {
		t.Fatalf("not accepted: %+v", sig)
	}
	if len(sig.Subjects) != 1 || sig.Subjects[0] != provSum() {
		t.Fatalf("subjects %v, want [%s]", sig.Subjects, provSum())
	}
	want := policy.ProvenanceFacts{Name: "hello", Version: "0.1.0", File: "hello-0.1.0.tgz"}
	if sig.Provenance == nil || *sig.Provenance != want {
		t.Fatalf("facts %+v, want %+v", sig.Provenance, want)
	}
	if sig.Layout != policy.LayoutHelmProvenance || sig.Ref != "sha256:prov" {
		t.Fatalf("layout %q ref %q", sig.Layout, sig.Ref)
	}
}

// refused fails unless sig counts for no authority, and its problem says
// what wantProblem says.
func refused(t *testing.T, sig policy.Signature, malformed bool, wantProblem string) {
	t.Helper()
	if sig.Authority != "" || sig.Malformed != malformed || !strings.Contains(sig.Problem, wantProblem) {
		t.Fatalf("got %+v, want refused (malformed %v) with a problem containing %q", sig, malformed, wantProblem)
	}
}

// THREATS PRV-02: only the allowed keys of the keyring count, however many
// keys it holds.
func TestProvenanceOnlyAllowedKeys(t *testing.T) {
	allowed := pgpKey(t, "release", testsign.PGPKeyOptions{})
	other := pgpKey(t, "intruder", testsign.PGPKeyOptions{})
	v := provVerifier(t, []*testsign.PGPKey{allowed, other}, allowed)

	accepted(t, v.Provenance("sha256:prov", clearSign(t, allowed, helloText(), testsign.ClearSignOptions{})), allowed)
	refused(t, v.Provenance("sha256:prov", clearSign(t, other, helloText(), testsign.ClearSignOptions{})), false, "which no authority allows")
}

// THREATS PRV-04: a provenance file is exactly one clearsigned message;
// each edit of a good file is refused as malformed before any key is tried.
func TestProvenanceFraming(t *testing.T) {
	k := pgpKey(t, "release", testsign.PGPKeyOptions{})
	v := provVerifier(t, []*testsign.PGPKey{k}, k)
	good := clearSign(t, k, helloText(), testsign.ClearSignOptions{})
	accepted(t, v.Provenance("sha256:prov", good), k) // the control twin

	threeParts := clearSign(t, k, append(helloText(), []byte("\n...\nfiles:\n  evil-0.1.0.tgz: "+provSum()+"\n")...), testsign.ClearSignOptions{})
	twoFiles := clearSign(t, k, append(helloText(), []byte("  evil-0.1.0.tgz: "+provSum()+"\n")...), testsign.ClearSignOptions{})
	wrongHashType := clearSign(t, k, bytes.Replace(helloText(), []byte("sha256:"), []byte("sha512:"), 1), testsign.ClearSignOptions{})
	sha512 := clearSign(t, k, helloText(), testsign.ClearSignOptions{Hash: crypto.SHA512})
	accepted(t, v.Provenance("sha256:prov", sha512), k) // a stronger hash, named by its header, is fine

	tests := []struct {
		name, problem string
		data          []byte
	}{
		{"empty", "empty file", []byte("\n")},
		{"junk before", "does not start", append([]byte("junk\n"), good...)},
		{"junk after", "bytes after", append(append([]byte{}, good...), []byte("junk\n")...)},
		{"two signed blocks", "bytes after", append(append([]byte{}, good...), good...)},
		{"CRLF", "carriage return", bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n"))},
		{"no Hash header", "exactly one Hash header", bytes.Replace(good, []byte("Hash: SHA256\n"), nil, 1)},
		{"two Hash headers", "exactly one Hash header", bytes.Replace(good, []byte("Hash: SHA256\n"), []byte("Hash: SHA256\nHash: SHA256\n"), 1)},
		{"Hash header names another hash", "the Hash header says", bytes.Replace(good, []byte("Hash: SHA256\n"), []byte("Hash: SHA512\n"), 1)},
		{"Hash header names a weak hash", "is not SHA256", bytes.Replace(good, []byte("Hash: SHA256\n"), []byte("Hash: SHA1\n"), 1)},
		{"three parts", "want 2", threeParts},
		{"two file entries", "want exactly 1", twoFiles},
		{"hash not sha256", "is not sha256", wrongHashType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, v.Provenance("sha256:prov", tc.data), true, tc.problem)
		})
	}
}

// A file whose signed text was edited does not verify.
func TestProvenanceTamperedText(t *testing.T) {
	k := pgpKey(t, "release", testsign.PGPKeyOptions{})
	v := provVerifier(t, []*testsign.PGPKey{k}, k)
	good := clearSign(t, k, helloText(), testsign.ClearSignOptions{})
	accepted(t, v.Provenance("sha256:prov", good), k)
	tampered := bytes.Replace(good, []byte("version: 0.1.0"), []byte("version: 0.1.1"), 1)
	refused(t, v.Provenance("sha256:prov", tampered), false, "helm:")
}

// THREATS PRV-05: the key must be valid, unexpired and unrevoked when it
// signed, the signature made with a strong hash, not in the future, and by
// a key allowed to sign. Each case has its control twin.
func TestProvenanceKeyValidity(t *testing.T) {
	now := time.Now()
	t.Run("expired key", func(t *testing.T) {
		// A .prov carries no trusted time: the key must be valid when the
		// signature says it was made, and now.
		k := pgpKey(t, "short", testsign.PGPKeyOptions{Created: now.Add(-48 * time.Hour), Lifetime: 24 * time.Hour})
		v := provVerifier(t, []*testsign.PGPKey{k}, k)
		refused(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{})), false, "expired")
		refused(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{At: now.Add(-47 * time.Hour)})), false, "expired or revoked now")
		live := pgpKey(t, "long", testsign.PGPKeyOptions{Created: now.Add(-48 * time.Hour), Lifetime: 72 * time.Hour})
		accepted(t, provVerifier(t, []*testsign.PGPKey{live}, live).Provenance("sha256:prov", clearSign(t, live, helloText(), testsign.ClearSignOptions{At: now.Add(-47 * time.Hour)})), live)
	})
	t.Run("retired key, signature dated before", func(t *testing.T) {
		k := pgpKey(t, "retired", testsign.PGPKeyOptions{Created: now.Add(-2 * time.Hour)})
		prov := clearSign(t, k, helloText(), testsign.ClearSignOptions{At: now.Add(-time.Hour)})
		accepted(t, provVerifier(t, []*testsign.PGPKey{k}, k).Provenance("sha256:prov", prov), k)
		if err := k.Retire(); err != nil {
			t.Fatal(err)
		}
		refused(t, provVerifier(t, []*testsign.PGPKey{k}, k).Provenance("sha256:prov", prov), false, "expired or revoked now")
	})
	t.Run("revoked key", func(t *testing.T) {
		k := pgpKey(t, "revoked", testsign.PGPKeyOptions{})
		prov := clearSign(t, k, helloText(), testsign.ClearSignOptions{})
		accepted(t, provVerifier(t, []*testsign.PGPKey{k}, k).Provenance("sha256:prov", prov), k)
		if err := k.Revoke(); err != nil {
			t.Fatal(err)
		}
		refused(t, provVerifier(t, []*testsign.PGPKey{k}, k).Provenance("sha256:prov", prov), false, "revoked")
	})
	t.Run("SHA-1", func(t *testing.T) {
		k := pgpKey(t, "sha1", testsign.PGPKeyOptions{})
		v := provVerifier(t, []*testsign.PGPKey{k}, k)
		sha1 := clearSign(t, k, helloText(), testsign.ClearSignOptions{Hash: crypto.SHA1})
		// Refused by the framing (the header says SHA1) and, with the
		// header saying SHA256, by the check that the signature agrees.
		refused(t, v.Provenance("sha256:prov", sha1), true, "is not SHA256")
		relabelled := bytes.Replace(sha1, []byte("Hash: SHA1\n"), []byte("Hash: SHA256\n"), 1)
		refused(t, v.Provenance("sha256:prov", relabelled), true, "the Hash header says")
		accepted(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{Hash: crypto.SHA256})), k)
	})
	t.Run("signature from the future", func(t *testing.T) {
		k := pgpKey(t, "future", testsign.PGPKeyOptions{Created: now.Add(-time.Hour)})
		v := provVerifier(t, []*testsign.PGPKey{k}, k)
		accepted(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{At: now.Add(-time.Minute)})), k)
		refused(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{At: now.Add(time.Hour)})), false, "expired")
	})
	t.Run("subkey without the signing flag", func(t *testing.T) {
		k := pgpKey(t, "rsa", testsign.PGPKeyOptions{RSABits: 2048})
		v := provVerifier(t, []*testsign.PGPKey{k}, k)
		accepted(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{})), k)
		refused(t, v.Provenance("sha256:prov", clearSign(t, k, helloText(), testsign.ClearSignOptions{Subkey: true})), false, "no valid signing")
	})
}
