package cli_test

import (
	"strings"
	"testing"

	"github.com/chartproof/chartproof/internal/cli"
	"github.com/chartproof/chartproof/internal/testsign"
)

// FuzzParsePolicy feeds policy files to the parser `chartproof verify
// --policy` uses. Whatever the input: no panic; a policy it returns is
// usable (repositories, at least one authority, a threshold between 1 and
// their number, a fingerprint); and parsing the same bytes again gives the
// same fingerprint.
func FuzzParsePolicy(f *testing.F) {
	k, err := testsign.NewKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	indent := func(n int) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(strings.TrimSpace(k.PublicPEM()), "\n", "\n"+pad) + "\n"
	}
	key := `apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: p}
spec:
  repositories: ["registry.example.com/charts/*"]
  authorities:
  - name: ci
    key:
      publicKey: |
` + indent(8)
	secret := `apiVersion: delivery.chartproof.dev/v1alpha1
kind: TrustPolicy
metadata: {name: p, namespace: team}
spec:
  repositories: ["registry.example.com/**"]
  threshold: 1
  authorities:
  - name: ci
    key: {secretRef: {name: keys, key: cosign.pub}, requireTransparencyLog: true}
---
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: team}
stringData:
  cosign.pub: |
` + indent(4)
	keyless := `apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata: {name: p}
spec:
  repositories: ["ghcr.io/org/**"]
  authorities:
  - name: gh
    keyless:
      identities:
      - {issuer: "https://token.actions.githubusercontent.com", subjectRegExp: "https://github\\.com/org/.*", subjectType: uri}
`
	aliases := "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	for _, s := range []string{key, secret, keyless} { // the valid seeds reach the invariants below
		if _, err := cli.ParsePolicy([]byte(s)); err != nil {
			f.Fatalf("seed does not parse: %v\n%s", err, s)
		}
	}
	for _, s := range []string{key, secret, keyless, aliases, "---\n---\n", "kind: Secret\n", key + "---\n" + key} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // LoadPolicyFile caps files at limits.MaxPolicyFileBytes; keep each run quick
		}
		p, err := cli.ParsePolicy(data)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a policy", err)
			}
			return
		}
		if len(p.Repositories) == 0 || len(p.Authorities) == 0 || p.Threshold < 1 || p.Threshold > len(p.Authorities) || len(p.Fingerprint) != 64 {
			t.Fatalf("unusable policy accepted: %+v", p)
		}
		again, err := cli.ParsePolicy(data)
		if err != nil || again.Fingerprint != p.Fingerprint {
			t.Fatalf("the same file parsed twice: %v, fingerprints %s and %s", err, p.Fingerprint, again.Fingerprint)
		}
	})
}
