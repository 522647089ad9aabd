package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCosignVerifiesLegacyKeyless: the legacy keyless layer internal/testsign
// makes (what chartproof's unit and controller tests verify) is the one
// cosign makes: `cosign verify` v2 and v3 accept it with the certificate's
// identity and issuer and the test Sigstore's trusted root, and refuse it
// for another identity. The layer is checked by cosign's own code: the
// certificate against the trusted root's CA at the log's time, the Rekor
// bundle annotation (body against the signature, certificate and payload;
// SET against the root's log key), the simple-signing payload against the
// digest.
//
// --insecure-ignore-sct: the test Sigstore issues certificates without
// SCTs (it has no CT log), which cosign otherwise requires; that is cosign's
// check of the certificate, not of the layer's format. chartproof requires
// SCTs whenever the trusted root lists CT logs
// (internal/verify.TestLegacyKeyless "no SCT while the trusted root lists a
// CT log (SIG-06)").
func TestCosignVerifiesLegacyKeyless(t *testing.T) {
	t.Parallel()
	lk := newLegacyKeyless(t)
	layer, err := lk.sigstore.SignLegacy(testsign.SimpleSigningPayload(lk.host+"/"+lk.repo, lk.digest), testsign.LegacyOptions{
		Cert: lk.cert, Timestamp: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (testsign.Registry{Host: lk.host}).AppendLegacyLayer(lk.repo, lk.digest, layer); err != nil {
		t.Fatal(err)
	}
	lk.cosignAgrees(t, []bool{false, true}, "verify")
}

// TestCosignVerifiesLegacyKeylessAttestation (issue 15): the keyless `.att`
// layer internal/testsign makes (Sigstore.AttestLegacy, which
// internal/gate.TestGitHubProvenanceKeyless verifies) is the one `cosign
// attest` v2 writes: a DSSE envelope with the certificate, its chain and the
// Rekor bundle of a dsse v0.0.1 entry. `cosign verify-attestation` (v3)
// accepts it for the certificate's identity and refuse it for another. A
// real cosign v2 cannot make it here: it needs a Rekor v1 log, which needs
// MySQL and a newer Go than this machine's (see docs/policy-provenance.md).
func TestCosignVerifiesLegacyKeylessAttestation(t *testing.T) {
	t.Parallel()
	lk := newLegacyKeyless(t)
	const slsaV1 = "https://slsa.dev/provenance/v1"
	stmt := testsign.AttestationStatement(slsaV1,
		`{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"}}}`,
		lk.host+"/"+lk.repo, lk.digest)
	layer, err := lk.sigstore.AttestLegacy(stmt, slsaV1, lk.cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := (testsign.Registry{Host: lk.host}).AppendLegacyAttestationLayer(lk.repo, lk.digest, layer); err != nil {
		t.Fatal(err)
	}
	// cosign v2's verify-attestation takes a trusted root only for the
	// new bundle format; v3 verifies the legacy layout with it.
	lk.cosignAgrees(t, []bool{true}, "verify-attestation", "--type", "slsaprovenance1", "--new-bundle-format=false")
}

// legacyKeyless is a chart in a registry and a test Sigstore whose
// certificates name a release workflow, for layers of cosign's legacy
// layout.
type legacyKeyless struct {
	host, repo, digest string
	sigstore           *testsign.Sigstore
	cert               testsign.Cert
	trustedRoot        string // file
}

const (
	legacyIssuer   = "https://token.actions.githubusercontent.com"
	legacyWorkflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
)

func newLegacyKeyless(t *testing.T) legacyKeyless {
	t.Helper()
	lk := legacyKeyless{host: startRegistry(t).Host, repo: "charts/hello",
		// Fulcio sets the issuer in both extensions; cosign's legacy path
		// reads only the deprecated one.
		cert: testsign.Cert{URI: legacyWorkflow, Issuer: legacyIssuer, Extensions: map[string]string{"oidcIssuerV1": legacyIssuer}},
	}
	lk.digest = pushChart(t, lk.host, lk.repo, "1.0.0")
	var err error
	if lk.sigstore, err = testsign.NewSigstore(); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := lk.sigstore.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	lk.trustedRoot = filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(lk.trustedRoot, rootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return lk
}

// cosignAgrees runs `cosign <command> <flags>` on the chart, with cosign v2
// and v3 as versions says (v3 when true): the
// certificate's identity is accepted, another refused for the identity
// alone (everything else verified).
func (lk legacyKeyless) cosignAgrees(t *testing.T, versions []bool, command string, flags ...string) {
	ref := lk.host + "/" + lk.repo + "@" + lk.digest
	for _, v3 := range versions {
		cosign := struct {
			name string
			c    *cosignCLI
		}{"cosign v2", nil}
		if v3 {
			cosign.name, cosign.c = "cosign v3", newCosign(t, tools.cosignV3, true)
		} else {
			cosign.c = newCosign(t, tools.cosignV2, false)
		}
		for _, tc := range []struct {
			name     string
			identity string
			accept   bool
		}{
			{"control: the certificate's identity", legacyWorkflow, true},
			{"another identity", "https://github.com/org/charts/.github/workflows/nightly.yaml@refs/heads/main", false},
		} {
			t.Run(cosign.name+"/"+tc.name, func(t *testing.T) {
				args := append([]string{command, "--certificate-identity", tc.identity, "--certificate-oidc-issuer", legacyIssuer,
					"--trusted-root", lk.trustedRoot, "--insecure-ignore-sct", "--allow-http-registry"}, flags...)
				res := cosign.c.run(append(args, ref)...)
				if (res.code == 0) != tc.accept {
					t.Fatalf("cosign %s: %s; want accepted: %v", command, res, tc.accept)
				}
				if !tc.accept && !strings.Contains(res.stderr, "none of the expected identities matched") {
					t.Errorf("cosign %s refused: %s; want the identity as the reason", command, res)
				}
			})
		}
	}
}
