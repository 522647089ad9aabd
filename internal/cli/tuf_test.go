package cli_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cli"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/testtuf"
)

// TestVerifyKeylessTUFRoot (issue 12, item 4): a keyless policy whose
// trusted root comes from a TUF repository on loopback, started from the
// root.json a ConfigMap document of the policy file pins, allows the chart
// as the cluster would. Its twin, the same repository serving an expired
// timestamp (THREATS FRS-02), is refused with TrustedRootRefused (exit 1),
// and nothing falls back to the embedded public-good root; a repository
// that does not answer is an outage: TrustedRootUnavailable, exit 3.
func TestVerifyKeylessTUFRoot(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
	)
	w := newWorld(t, worldOptions{})
	digest := w.pushHello(t, "charts/hello", "1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SignKeyless(testsign.Statement(w.reg.Host+"/charts/hello", digest), testsign.KeylessOptions{
		Cert: testsign.Cert{URI: workflow, Issuer: issuer},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.reg.AttachBundle("charts/hello", digest, b, false); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{"fresh", "timestamp expired", "repository down"} {
		t.Run(state, func(t *testing.T) {
			repo, err := testtuf.New(rootJSON)
			if err != nil {
				t.Fatal(err)
			}
			if state == "timestamp expired" {
				if err := repo.ExpireTimestamp(); err != nil {
					t.Fatal(err)
				}
			}
			srv := repo.Serve()
			defer srv.Close()
			if state == "repository down" {
				srv.Close() // nothing answers at its URL any more
			}
			policyYAML := fmt.Sprintf(`apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: ci-keyless
spec:
  repositories:
  - %s/charts/hello
  authorities:
  - name: release
    keyless:
      trustedRoot:
        tuf:
          url: %s
          root:
            namespace: chartproof-system
            name: sigstore-tuf-root
      identities:
      - issuer: %s
        subject: %s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: sigstore-tuf-root
  namespace: chartproof-system
binaryData:
  root.json: %s
`, w.reg.Host, srv.URL, issuer, workflow, base64.StdEncoding.EncodeToString(repo.Root()))
			dir := t.TempDir()
			pol := filepath.Join(dir, "policy.yaml")
			if err := os.WriteFile(pol, []byte(policyYAML), 0o600); err != nil {
				t.Fatal(err)
			}
			res := verify(t, "--plain-http", "--policy", pol, "--tuf-cache-dir", filepath.Join(dir, "tuf"), "--output", "json", w.ref("charts/hello", "1.0.0"))
			switch state {
			case "repository down":
				// An outage, not a refusal: exit 3.
				if res.code != cli.ExitInconclusive || !strings.Contains(res.stderr, chartproofv1.ReasonTrustedRootUnavailable) {
					t.Fatalf("got exit %d stderr %q, want 3 and %s", res.code, res.stderr, chartproofv1.ReasonTrustedRootUnavailable)
				}
				return
			case "fresh":
				out := parseOutput(t, res.stdout)
				if res.code != cli.ExitAllowed || len(out.Accepted) != 1 || out.Accepted[0].Identity == nil || out.Accepted[0].Identity.Subject != workflow {
					t.Fatalf("got exit %d accepted %+v reasons %+v (stderr %s), want 0 and the release workflow as signer", res.code, out.Accepted, out.Reasons, res.stderr)
				}
				return
			}
			if res.code != cli.ExitDenied || !strings.Contains(res.stderr, chartproofv1.ReasonTrustedRootRefused) || !strings.Contains(res.stderr, "expired") {
				t.Fatalf("got exit %d stderr %q, want 1 and %s for the expired timestamp", res.code, res.stderr, chartproofv1.ReasonTrustedRootRefused)
			}
		})
	}
}
