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
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
		repo     = "charts/hello"
	)
	host := startRegistry(t).Host
	digest := pushChart(t, host, repo, "1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(host+"/"+repo, digest), testsign.LegacyOptions{
		// Fulcio sets the issuer in both extensions; cosign's legacy path
		// reads only the deprecated one.
		Cert: testsign.Cert{URI: workflow, Issuer: issuer, Extensions: map[string]string{"oidcIssuerV1": issuer}}, Timestamp: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (testsign.Registry{Host: host}).AppendLegacyLayer(repo, digest, layer); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	trustedRoot := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trustedRoot, rootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repo + "@" + digest
	for _, cosign := range []struct {
		name string
		c    *cosignCLI
	}{
		{"cosign v2", newCosign(t, tools.cosignV2, false)},
		{"cosign v3", newCosign(t, tools.cosignV3, true)},
	} {
		for _, tc := range []struct {
			name     string
			identity string
			accept   bool
		}{
			{"control: the certificate's identity", workflow, true},
			{"another identity", "https://github.com/org/charts/.github/workflows/nightly.yaml@refs/heads/main", false},
		} {
			t.Run(cosign.name+"/"+tc.name, func(t *testing.T) {
				res := cosign.c.run("verify", "--certificate-identity", tc.identity, "--certificate-oidc-issuer", issuer,
					"--trusted-root", trustedRoot, "--insecure-ignore-sct", "--allow-http-registry", ref)
				if (res.code == 0) != tc.accept {
					t.Fatalf("cosign verify: %s; want accepted: %v", res, tc.accept)
				}
				// refused for the identity alone: everything else verified
				if !tc.accept && !strings.Contains(res.stderr, "none of the expected identities matched") {
					t.Errorf("cosign verify refused: %s; want the identity as the reason", res)
				}
			})
		}
	}
}
