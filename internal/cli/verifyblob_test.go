package cli_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cli"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	blobIssuer   = "https://token.actions.githubusercontent.com"
	blobWorkflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
)

// changedContent is the artifact with one byte more.
var changedContent = []byte("hello, blob!\n")

// blobWorld is an artifact, a changed copy of it, keys, a throwaway
// Sigstore and its trusted root, all in files of one directory.
type blobWorld struct {
	dir               string
	artifact, changed string // paths
	digest            string // sha256 of the artifact
	key, other        *testsign.Key
	keyPEM, otherPEM  string // paths of the public keys
	sigstore          *testsign.Sigstore
	root              string // path of the throwaway Sigstore's trusted_root.json
	keyIDs            []string
	bundles           map[string]string // name -> path
}

func newBlobWorld(t *testing.T) *blobWorld {
	t.Helper()
	dir := t.TempDir()
	content := []byte("hello, blob\n") // fixed, so its digest is stable in golden files
	sum := sha256.Sum256(content)
	w := &blobWorld{dir: dir, digest: "sha256:" + hex.EncodeToString(sum[:]), bundles: map[string]string{}}
	w.artifact = w.write(t, "artifact.txt", content)
	w.changed = w.write(t, "changed.txt", changedContent)
	var err error
	for _, k := range []**testsign.Key{&w.key, &w.other} {
		if *k, err = testsign.NewKey("p256"); err != nil {
			t.Fatal(err)
		}
		_, id, err := policy.ParsePublicKey([]byte((*k).PublicPEM()))
		if err != nil {
			t.Fatal(err)
		}
		w.keyIDs = append(w.keyIDs, id)
	}
	w.keyPEM = w.write(t, "cosign.pub", []byte(w.key.PublicPEM()))
	w.otherPEM = w.write(t, "other.pub", []byte(w.other.PublicPEM()))
	if w.sigstore, err = testsign.NewSigstore(); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := w.sigstore.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	w.root = w.write(t, "trusted_root.json", rootJSON)

	statement := testsign.Statement("artifact.txt", w.digest)
	dsse, err := testsign.Bundle(statement, w.key)
	if err != nil {
		t.Fatal(err)
	}
	w.bundles["dsse"] = w.write(t, "dsse.sigstore.json", dsse)
	w.bundles["message"] = w.write(t, "message.sigstore.json", messageSignatureBundle(t, content, w.key))
	keyless, err := w.sigstore.SignKeyless(statement, testsign.KeylessOptions{Cert: testsign.Cert{URI: blobWorkflow, Issuer: blobIssuer}})
	if err != nil {
		t.Fatal(err)
	}
	w.bundles["keyless"] = w.write(t, "keyless.sigstore.json", keyless)
	logged, err := w.sigstore.SignKeyedLogged(statement, w.key, testsign.KeyedLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.bundles["logged"] = w.write(t, "logged.sigstore.json", logged)
	w.bundles["garbage"] = w.write(t, "garbage.sigstore.json", []byte(`{"mediaType": 7}`))
	attestation := bytes.Replace(statement, []byte("https://sigstore.dev/cosign/sign/v1"), []byte("https://slsa.dev/provenance/v1"), 1)
	att, err := testsign.Bundle(attestation, w.key)
	if err != nil {
		t.Fatal(err)
	}
	w.bundles["attestation"] = w.write(t, "attestation.sigstore.json", att)
	return w
}

func (w *blobWorld) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(w.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// messageSignatureBundle is a bundle v0.3 holding a message signature over
// the sha256 of blob, with a public-key hint, as `cosign sign-blob --key
// --bundle` writes it without a transparency log.
func messageSignatureBundle(t *testing.T, blob []byte, k *testsign.Key) []byte {
	t.Helper()
	sig, err := k.Sign(blob) // ECDSA over sha256(blob)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	hint, sum := sha256.Sum256(der), sha256.Sum256(blob)
	b, err := protojson.Marshal(&protobundle.Bundle{
		MediaType: testsign.BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{
				Hint: base64.StdEncoding.EncodeToString(hint[:]),
			}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scrub replaces what changes from run to run: the directory, key IDs, and
// every digest but the artifacts' (the bundle's digest: signatures are
// random).
func (w *blobWorld) scrub(s string) string {
	s = strings.ReplaceAll(s, w.dir, "DIR")
	for _, id := range w.keyIDs {
		s = strings.ReplaceAll(s, id, "KEYID")
		s = strings.ReplaceAll(s, id[:16], "KEYID")
	}
	changed := sha256.Sum256(changedContent)
	return sha256Digest.ReplaceAllStringFunc(s, func(d string) string {
		if d == w.digest || d == "sha256:"+hex.EncodeToString(changed[:]) {
			return d
		}
		return "SIGDIGEST"
	})
}

func verifyBlob(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := cli.VerifyBlob(cli.Env{Stdout: &stdout, Stderr: &stderr}, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestVerifyBlob verifies bundles over an artifact file (or its digest)
// under a key or a certificate identity: each run in text and JSON, the
// verdict read from the JSON, with the exit codes of chartproof verify.
func TestVerifyBlob(t *testing.T) {
	w := newBlobWorld(t)
	keyless := func(extra ...string) []string {
		return append([]string{"--bundle", w.bundles["keyless"], "--trusted-root", w.root}, extra...)
	}
	tests := []struct {
		name   string
		args   []string
		golden string // golden file prefix, or empty
		code   int
		want   []string // reason codes
		signer string   // the keyless subject accepted, when allowed
	}{
		{"key, DSSE bundle", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.artifact}, "blob-allowed-key", 0, nil, ""},
		{"key, message signature", []string{"--bundle", w.bundles["message"], "--key", w.keyPEM, w.artifact}, "", 0, nil, ""},
		{"key, message signature, by digest", []string{"--bundle", w.bundles["message"], "--key", w.keyPEM, w.digest}, "", 0, nil, ""},
		{"key, DSSE bundle, by digest", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.digest}, "", 0, nil, ""},
		{"another key", []string{"--bundle", w.bundles["dsse"], "--key", w.otherPEM, w.artifact}, "blob-untrusted-signer", 1, []string{chartproofv1.ReasonUntrustedSigner}, ""},
		{"another key, message signature", []string{"--bundle", w.bundles["message"], "--key", w.otherPEM, w.artifact}, "", 1, []string{chartproofv1.ReasonUntrustedSigner}, ""},
		{"key, artifact changed", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.changed}, "blob-subject-mismatch", 1, []string{chartproofv1.ReasonSubjectMismatch}, ""},
		{"key, message signature, artifact changed", []string{"--bundle", w.bundles["message"], "--key", w.keyPEM, w.changed}, "", 1, []string{chartproofv1.ReasonSubjectMismatch}, ""},
		{"key, another digest", []string{"--bundle", w.bundles["message"], "--key", w.keyPEM, "sha256:" + strings.Repeat("0", 64)}, "", 1, []string{chartproofv1.ReasonSubjectMismatch}, ""},
		{"key, malformed bundle", []string{"--bundle", w.bundles["garbage"], "--key", w.keyPEM, w.artifact}, "", 1, []string{chartproofv1.ReasonMalformedSignature}, ""},
		{"key and its log", []string{"--bundle", w.bundles["logged"], "--key", w.keyPEM, "--trusted-root", w.root, w.artifact}, "", 0, nil, ""},
		{"key and its log, unlogged bundle", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, "--trusted-root", w.root, w.artifact}, "", 1, []string{chartproofv1.ReasonNotLogged}, ""},
		{"control: key without a log, logged bundle", []string{"--bundle", w.bundles["logged"], "--key", w.keyPEM, w.artifact}, "", 0, nil, ""},
		{"key, keyless bundle", []string{"--bundle", w.bundles["keyless"], "--key", w.keyPEM, w.artifact}, "", 1, []string{chartproofv1.ReasonUntrustedSigner}, ""},

		{"keyless, exact identity", keyless("--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", blobIssuer, w.artifact), "", 0, nil, blobWorkflow},
		{"keyless, by digest", keyless("--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", blobIssuer, w.digest), "", 0, nil, blobWorkflow},
		{"keyless, regexps", keyless("--certificate-identity-regexp", `https://github\.com/org/charts/\.github/workflows/.*`,
			"--certificate-oidc-issuer-regexp", `https://token\.actions\.githubusercontent\.com`, w.artifact), "", 0, nil, blobWorkflow},
		{"keyless, another subject", keyless("--certificate-identity", strings.Replace(blobWorkflow, "release", "nightly", 1),
			"--certificate-oidc-issuer", blobIssuer, w.artifact), "", 1, []string{chartproofv1.ReasonIdentityMismatch}, ""},
		{"keyless, another issuer", keyless("--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", "https://gitlab.com", w.artifact),
			"", 1, []string{chartproofv1.ReasonIdentityMismatch}, ""},
		// cosign would accept these two: its regexps match anywhere.
		{"keyless, subject regexp matching a prefix only", keyless("--certificate-identity-regexp", `https://github\.com/org/charts/`,
			"--certificate-oidc-issuer", blobIssuer, w.artifact), "", 1, []string{chartproofv1.ReasonIdentityMismatch}, ""},
		{"keyless, subject regexp matching inside only", keyless("--certificate-identity-regexp", `org/charts/\.github/workflows/release\.yaml`,
			"--certificate-oidc-issuer", blobIssuer, w.artifact), "", 1, []string{chartproofv1.ReasonIdentityMismatch}, ""},
		{"keyless, issuer regexp matching a prefix only", keyless("--certificate-identity", blobWorkflow,
			"--certificate-oidc-issuer-regexp", `https://token\.actions`, w.artifact), "", 1, []string{chartproofv1.ReasonIdentityMismatch}, ""},
		{"keyless, artifact changed", keyless("--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", blobIssuer, w.changed),
			"", 1, []string{chartproofv1.ReasonSubjectMismatch}, ""},
		{"keyless, embedded public-good root", []string{"--bundle", w.bundles["keyless"], "--certificate-identity", blobWorkflow,
			"--certificate-oidc-issuer", blobIssuer, w.artifact}, "", 1, []string{chartproofv1.ReasonUntrustedSigner}, ""},
		{"keyless, keyed bundle", keyless("--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", blobIssuer, "--bundle", w.bundles["dsse"], w.artifact),
			"", 1, []string{chartproofv1.ReasonUntrustedSigner}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := verifyBlob(tc.args...)
			jsonRun := verifyBlob(append([]string{"--output", "json"}, tc.args...)...)
			out := verdict{
				code: tc.code, allowed: tc.code == 0, passed: tc.code == 0, digest: decidedDigest(t, w, tc.args),
				policy: "CommandLine verify-blob", reasons: tc.want,
			}.check(t, text, jsonRun)
			if out.Repository != cli.BlobRepository || out.Artifact != tc.args[len(tc.args)-1] {
				t.Errorf("repository %q artifact %q, want %q and %q", out.Repository, out.Artifact, cli.BlobRepository, tc.args[len(tc.args)-1])
			}
			if tc.signer != "" {
				if len(out.Accepted) != 1 || out.Accepted[0].Identity == nil || out.Accepted[0].Identity.Subject != tc.signer ||
					out.Accepted[0].Identity.Issuer != blobIssuer || out.Accepted[0].Log == nil || out.Accepted[0].SignedAt == nil {
					t.Errorf("accepted %+v, want %s (%s) with its log entry and signing time", out.Accepted, tc.signer, blobIssuer)
				}
				if !strings.Contains(text.stdout, "signer "+tc.signer+" ("+blobIssuer+"), log index ") {
					t.Errorf("text output does not name the signer and log index:\n%s", text.stdout)
				}
			}
			if tc.golden != "" {
				checkGolden(t, tc.golden+".json", w.scrub(jsonRun.stdout))
				checkGolden(t, tc.golden+".txt", w.scrub(text.stdout))
			}
		})
	}
}

// decidedDigest is the digest a run decides on: the artifact's, or the one given.
func decidedDigest(t *testing.T, w *blobWorld, args []string) string {
	t.Helper()
	switch a := args[len(args)-1]; a {
	case w.artifact:
		return w.digest
	case w.changed:
		sum := sha256.Sum256(changedContent)
		return "sha256:" + hex.EncodeToString(sum[:])
	default:
		return a
	}
}

// TestVerifyBlobAttestation: a bundle of another predicate type is an
// in-toto attestation; verify-blob verifies it as a conformant Sigstore
// verifier does, over its subjects, and reports its predicate type. The
// twin, the same attestation over another artifact, is refused
// (SubjectMismatch), and so is one by another key (UntrustedSigner).
func TestVerifyBlobAttestation(t *testing.T) {
	w := newBlobWorld(t)
	res := verifyBlob("--output", "json", "--bundle", w.bundles["attestation"], "--key", w.keyPEM, w.artifact)
	o := parseOutput(t, res.stdout)
	if res.code != cli.ExitAllowed || len(o.Accepted) != 1 || o.Accepted[0].PredicateType == "" {
		t.Fatalf("got exit %d %+v, want 0 and the attestation's predicate type", res.code, o)
	}
	text := verifyBlob("--bundle", w.bundles["attestation"], "--key", w.keyPEM, w.artifact)
	if want := "  attestation of predicate type " + o.Accepted[0].PredicateType + "\n"; !strings.Contains(text.stdout, want) {
		t.Errorf("text output lacks %q:\n%s", want, text.stdout)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"another artifact", []string{"--bundle", w.bundles["attestation"], "--key", w.keyPEM, w.changed}, chartproofv1.ReasonSubjectMismatch},
		{"another key", []string{"--bundle", w.bundles["attestation"], "--key", w.otherPEM, w.artifact}, chartproofv1.ReasonUntrustedSigner},
	} {
		res := verifyBlob(append([]string{"--output", "json"}, tc.args...)...)
		if o := parseOutput(t, res.stdout); res.code != cli.ExitDenied || !cmp.Equal(reasonCodes(o), []string{tc.want}) {
			t.Errorf("%s: exit %d reasons %v; want 1, %s", tc.name, res.code, reasonCodes(o), tc.want)
		}
	}
}

// TestVerifyBlobUsage: every misuse exits 2 with a message and prints no
// verdict. A keyless authority without a full identity is one: never "any
// signer".
func TestVerifyBlobUsage(t *testing.T) {
	w := newBlobWorld(t)
	id := []string{"--certificate-identity", blobWorkflow, "--certificate-oidc-issuer", blobIssuer}
	tests := []struct {
		name string
		args []string
		want string // part of stderr
	}{
		{"no --bundle", []string{"--key", w.keyPEM, w.artifact}, "--bundle is required"},
		{"no authority", []string{"--bundle", w.bundles["dsse"], w.artifact}, "want --key, or a certificate identity"},
		{"key and identity", append([]string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.artifact}, id...), "--key cannot be combined"},
		{"key and identity regexp", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, "--certificate-identity-regexp", "x.+", w.artifact}, "--key cannot be combined"},
		{"key and identity", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, "--certificate-identity", blobWorkflow, w.artifact}, "--key cannot be combined"},
		{"keyless without subject", []string{"--bundle", w.bundles["keyless"], "--certificate-oidc-issuer", blobIssuer, w.artifact}, `there is no "any signer"`},
		{"keyless without issuer", []string{"--bundle", w.bundles["keyless"], "--certificate-identity", blobWorkflow, w.artifact}, `there is no "any signer"`},
		{"trusted root only", []string{"--bundle", w.bundles["keyless"], "--trusted-root", w.root, w.artifact}, `want --key, or a certificate identity`},
		{"identity and identity regexp", append([]string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", "https://.+", w.artifact}, id...),
			"set one of --certificate-identity and --certificate-identity-regexp"},
		{"issuer and issuer regexp", append([]string{"--bundle", w.bundles["keyless"], "--certificate-oidc-issuer-regexp", "https://.+", w.artifact}, id...),
			"set one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp"},
		{"regexp matching everything", []string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", ".*", "--certificate-oidc-issuer", blobIssuer, w.artifact},
			"matches the empty string"},
		{"invalid regexp", []string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", blobIssuer, w.artifact},
			"missing closing )"},
		{"identity regexp accepting anyone (POL-01)", []string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", ".+", "--certificate-oidc-issuer", blobIssuer, w.artifact},
			"accepts any issuer or signer"},
		{"identity regexp accepting any e-mail (POL-01)", []string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", ".*@.*", "--certificate-oidc-issuer", blobIssuer, w.artifact},
			"accepts any issuer or signer"},
		{"issuer regexp accepting any issuer (POL-01)", []string{"--bundle", w.bundles["keyless"], "--certificate-identity", blobWorkflow, "--certificate-oidc-issuer-regexp", "https://.+", w.artifact},
			"accepts any issuer or signer"},
		{"identity regexp escaping its anchors (POL-01)", []string{"--bundle", w.bundles["keyless"], "--certificate-identity-regexp", `https://github\.com/org/x)|(.*`, "--certificate-oidc-issuer", blobIssuer, w.artifact},
			"unexpected )"},
		{"not a key", []string{"--bundle", w.bundles["dsse"], "--key", w.root, w.artifact}, "public key: no PEM block"},
		{"not a trusted root", append([]string{"--bundle", w.bundles["keyless"], "--trusted-root", w.keyPEM, w.artifact}, id...), "trusted root"},
		{"missing bundle file", []string{"--bundle", filepath.Join(w.dir, "nope"), "--key", w.keyPEM, w.artifact}, "--bundle: open"},
		{"missing artifact", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, filepath.Join(w.dir, "nope")}, "artifact: open"},
		{"not a digest", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, "sha256:ABC"}, "is not a sha256 digest"},
		{"no artifact", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM}, "want exactly one artifact"},
		{"two artifacts", []string{"--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.artifact, w.changed}, "want exactly one artifact"},
		{"bad output", []string{"--output", "yaml", "--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.artifact}, "--output must be text or json"},
		{"unknown flag", []string{"--certificate-github-workflow-repository", "org/charts", "--bundle", w.bundles["dsse"], "--key", w.keyPEM, w.artifact}, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := verifyBlob(tc.args...)
			if res.code != cli.ExitUsage || res.stdout != "" || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("got exit %d stdout %q stderr %q, want 2, no verdict and a message containing %q", res.code, res.stdout, res.stderr, tc.want)
			}
		})
	}
}

// TestVerifyBlobHelp: --help prints the usage and exits 0.
func TestVerifyBlobHelp(t *testing.T) {
	res := verifyBlob("--help")
	if res.code != cli.ExitAllowed || !strings.Contains(res.stderr, "Usage: chartproof verify-blob") || !strings.Contains(res.stderr, "--certificate-oidc-issuer-regexp") {
		t.Fatalf("got exit %d stderr %q, want 0 and the usage", res.code, res.stderr)
	}
}
