package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// conformanceDir holds the Sigstore conformance corpus (see its README.md).
const conformanceDir = "testdata/sigstore-conformance/bundle-verify"

// conformanceDefaults are the corpus' identity and issuer when a case names
// none (bundle-verify/README.md).
const (
	conformanceIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	conformanceIssuer   = "https://token.actions.githubusercontent.com"
)

// Outcomes of a case besides a reason code.
const (
	accepted = "accepted" // exit 0
	unusable = "unusable" // exit 2: the key or trusted root given cannot be used
)

// attestation names the three happy paths whose bundle is an in-toto
// attestation (another predicate type than cosign's signing statement).
// verify-blob accepts them, as a conformant Sigstore verifier does, and
// reports the predicate type; a chart's signatures never count one.
var attestation = map[string]bool{
	"happy-path-intoto-in-dsse-v3": true, "intoto-with-custom-trust-root": true, "rekor2-dsse-happy-path": true,
}

// conformanceWant is what chartproof must answer for each case: accepted,
// unusable, or the reason code of the refusal (exit 1). Every case ending in
// _fail is refused, every other accepted.
var conformanceWant = map[string]string{
	"bundle-empty-certificate-chain_fail":                       chartproofv1.ReasonMalformedSignature,
	"bundle-from-wrong-instance_fail":                           chartproofv1.ReasonUntrustedSigner,
	"bundle-invalid-base64-signature_fail":                      chartproofv1.ReasonMalformedSignature,
	"bundle-malformed-json_fail":                                chartproofv1.ReasonMalformedSignature,
	"bundle-negative-log-index_fail":                            chartproofv1.ReasonMalformedSignature,
	"bundle-unknown-version_fail":                               chartproofv1.ReasonMalformedSignature,
	"bundle-with-root-cert_fail":                                chartproofv1.ReasonMalformedSignature,
	"bundle-with-sct-with-extensions":                           accepted,
	"checkpoint-bad-keyhint_fail":                               chartproofv1.ReasonUntrustedSigner,
	"checkpoint-wrong-roothash_fail":                            chartproofv1.ReasonUntrustedSigner,
	"dsse-invalid-sig_fail":                                     chartproofv1.ReasonUntrustedSigner,
	"dsse-mismatch-envelope_fail":                               chartproofv1.ReasonUntrustedSigner,
	"dsse-mismatch-sig_fail":                                    chartproofv1.ReasonUntrustedSigner,
	"happy-path-intoto-in-dsse-v3":                              accepted,
	"happy-path-v0.1":                                           accepted,
	"happy-path-v0.2":                                           accepted,
	"happy-path-v0.3":                                           accepted,
	"happy-path-v0.3-new-mediaType":                             accepted,
	"inclusion-proof-corrupted-hash_fail":                       chartproofv1.ReasonUntrustedSigner,
	"incorrect-public-key_fail":                                 chartproofv1.ReasonMalformedSignature,
	"integrated-time-in-future_fail":                            chartproofv1.ReasonUntrustedSigner,
	"intoto-expired-certificate_fail":                           chartproofv1.ReasonUntrustedSigner,
	"intoto-log-entry-mismatch_fail":                            chartproofv1.ReasonMalformedSignature,
	"intoto-missing-inclusion-proof_fail":                       chartproofv1.ReasonMalformedSignature,
	"intoto-set-outside-signing-cert-validity_fail":             chartproofv1.ReasonUntrustedSigner,
	"intoto-tsa-timestamp-outside-cert-validity_fail":           chartproofv1.ReasonUntrustedSigner,
	"intoto-with-custom-trust-root":                             accepted,
	"invalid-checkpoint-signature_fail":                         chartproofv1.ReasonUntrustedSigner,
	"invalid-ct-key_fail":                                       chartproofv1.ReasonUntrustedSigner,
	"invalid-inclusion-proof_fail":                              chartproofv1.ReasonMalformedSignature,
	"managed-key-and-trusted-root":                              accepted,
	"managed-key-happy-path":                                    accepted,
	"managed-key-no-key_fail":                                   chartproofv1.ReasonUntrustedSigner,
	"managed-key-wrong-key_fail":                                unusable,
	"message-digest-mismatch_fail":                              chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-cosigned":                                accepted,
	"rekor2-checkpoint-missing-log-signature_fail":              chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-missing-origin_fail":                     chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-missing-root-hash_fail":                  chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-missing-size_fail":                       chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-multiple-cosigs":                         accepted,
	"rekor2-checkpoint-no-matching-signature_fail":              chartproofv1.ReasonUntrustedSigner,
	"rekor2-checkpoint-origin-not-first":                        accepted,
	"rekor2-checkpoint-two-sigs-cosigned":                       accepted,
	"rekor2-checkpoint-two-sigs-from-origin":                    accepted,
	"rekor2-dsse-happy-path":                                    accepted,
	"rekor2-dsse-invalid-sig_fail":                              chartproofv1.ReasonUntrustedSigner,
	"rekor2-dsse-mismatch-envelope_fail":                        chartproofv1.ReasonUntrustedSigner,
	"rekor2-dsse-mismatch-sig_fail":                             chartproofv1.ReasonUntrustedSigner,
	"rekor2-happy-path":                                         accepted,
	"rekor2-no-inclusion-proof_fail":                            chartproofv1.ReasonMalformedSignature,
	"rekor2-no-timestamp_fail":                                  chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-outside-trust-root-tsa-validity_fail":     chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-outside-tsa-cert-validity_fail":           chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-payload-mismatch_fail":                    chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail":    chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": chartproofv1.ReasonUntrustedSigner,
	"rekor2-timestamp-with-embedded-cert":                       accepted,
	"rekor2-timestamp-with-expired-cert-chain":                  accepted,
	"rekor2-timestamp-with-incorrect-time_fail":                 chartproofv1.ReasonMalformedSignature,
	"rekor2-timestamp-without-embedded-cert":                    accepted,
	"set-invalid-signature_fail":                                chartproofv1.ReasonUntrustedSigner,
	"signature-mismatch_fail":                                   chartproofv1.ReasonUntrustedSigner,
	"trust-root-tlog-missing-validity-start_fail":               unusable,
	"trust-root-tlog-validity-end-inclusive":                    accepted,
	"trust-root-tsa-validity-end-inclusive":                     accepted,
	"wrong-hashedrekord-artifact_fail":                          chartproofv1.ReasonUntrustedSigner,
	"wrong-hashedrekord-cert-and-sig_fail":                      chartproofv1.ReasonUntrustedSigner,
	"wrong-hashedrekord-entry_fail":                             chartproofv1.ReasonUntrustedSigner,
	"wrong-material_fail":                                       chartproofv1.ReasonSubjectMismatch,
}

// TestSigstoreConformance runs every bundle-verification case of the
// Sigstore conformance suite through `chartproof verify-blob`: the same
// verifier and policy evaluation as the controller, and checks the outcome
// and reason code of each (conformanceWant). The happy paths are the
// control twins of the _fail cases.
func TestSigstoreConformance(t *testing.T) {
	entries, err := os.ReadDir(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(conformanceDir, name)
			has := func(f string) bool { _, err := os.Stat(filepath.Join(dir, f)); return err == nil }
			read := func(f, def string) string {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					return def
				}
				return strings.TrimSpace(string(b))
			}
			args := []string{"--output", "json", "--bundle", filepath.Join(dir, "bundle.sigstore.json")}
			if has("key.pub") {
				args = append(args, "--key", filepath.Join(dir, "key.pub"))
			} else {
				args = append(args, "--certificate-identity", read("identity", conformanceIdentity), "--certificate-oidc-issuer", read("issuer", conformanceIssuer))
			}
			if has("trusted_root.json") {
				args = append(args, "--trusted-root", filepath.Join(dir, "trusted_root.json"))
			}
			artifact := filepath.Join(conformanceDir, "a.txt")
			if has("artifact") {
				artifact = filepath.Join(dir, "artifact")
			}
			res := verifyBlob(append(args, artifact)...)
			want, ok := conformanceWant[name]
			if !ok {
				t.Fatalf("a new case: add it to conformanceWant once its outcome is understood (README: %s)\n%+v", read("README", ""), res)
			}
			got := accepted
			switch res.code {
			case 0:
			case 2:
				got = unusable
			default:
				var out struct{ Reasons []struct{ Code string } }
				if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 1 || len(out.Reasons) == 0 {
					t.Fatalf("exit %d, output not a verdict: %v\n%+v", res.code, err, res)
				}
				got = out.Reasons[0].Code
			}
			if got != want {
				t.Errorf("got %s, want %s (README: %s)\n%+v", got, want, read("README", ""), res)
			}
			if got == accepted {
				var out struct {
					Accepted []struct{ PredicateType string }
				}
				if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Accepted) != 1 {
					t.Fatalf("accepted, but the output names no signer: %v\n%+v", err, res)
				}
				if (out.Accepted[0].PredicateType != "") != attestation[name] {
					t.Errorf("predicateType %q reported; want one exactly for the attestations", out.Accepted[0].PredicateType)
				}
			}
		})
	}
	for name, want := range conformanceWant {
		switch {
		case !seen[name]:
			t.Errorf("conformanceWant names %s, which the corpus does not have", name)
		case strings.HasSuffix(name, "_fail") == (want == accepted):
			t.Errorf("conformanceWant says %s for %s: against the corpus", want, name)
		}
	}
}
