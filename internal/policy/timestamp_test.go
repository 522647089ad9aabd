package policy_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify/trustedroot"
)

// TestCompileTimestampChain (THREATS PKI-13): a trusted root whose timestamp
// authority's chain is not sound is refused when the policy compiles: a root
// that is not a CA, or not self-issued, an intermediate that is not a CA, a
// CA certificate as the authority's own. The controls are the test
// Sigstore's timestamp authority, the same chain built here, and the
// public-good trusted root chartproof embeds.
func TestCompileTimestampChain(t *testing.T) {
	base, err := root.NewTrustedRootFromJSON(trustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	notCA := func(c *x509.Certificate) { c.IsCA = false }
	// chain builds root -> intermediate -> leaf, each shaped by its edit.
	chain := func(rootEdit, interEdit, leafEdit func(*x509.Certificate), underAnother bool) *root.SigstoreTimestampingAuthority {
		t.Helper()
		ca, err := testsign.NewRootCA("tsa root", rootEdit)
		if err != nil {
			t.Fatal(err)
		}
		if underAnother {
			other, err := testsign.NewRootCA("another root", nil)
			if err != nil {
				t.Fatal(err)
			}
			if ca, err = other.NewIntermediate("tsa root", rootEdit); err != nil {
				t.Fatal(err)
			}
		}
		inter, err := ca.NewIntermediate("tsa intermediate", interEdit)
		if err != nil {
			t.Fatal(err)
		}
		key, err := testsign.NewKey("p256")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := inter.Issue(key, "tsa@chartproof.test", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}
			if leafEdit != nil {
				leafEdit(c)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return &root.SigstoreTimestampingAuthority{Root: ca.Cert, Intermediates: []*x509.Certificate{inter.Cert}, Leaf: leaf, URI: "https://tsa.chartproof.test"}
	}
	withTSA := func(tsa root.TimestampingAuthority) []byte {
		t.Helper()
		tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, base.FulcioCertificateAuthorities(), base.CTLogs(), []root.TimestampingAuthority{tsa}, base.RekorLogs())
		if err != nil {
			t.Fatal(err)
		}
		b, err := tr.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		json     []byte
		wantText string // "" compiles
	}{
		{"control: the test Sigstore's timestamp authority", trustedRootJSON(t), ""},
		{"control: a sound chain built here", withTSA(chain(nil, nil, nil, false)), ""},
		{"control: the embedded public-good trusted root", trustedroot.PublicGoodJSON(), ""},
		{"root not a CA", withTSA(chain(notCA, nil, nil, false)), "is not a CA certificate"},
		{"root not self-issued", withTSA(chain(nil, nil, nil, true)), "not self-signed"},
		{"intermediate not a CA", withTSA(chain(nil, notCA, nil, false)), "is not a CA certificate"},
		// sigstore-go takes a CA certificate at the chain's head for an
		// intermediate: it is refused as one (no keyCertSign here).
		{"CA certificate as the authority's own", withTSA(chain(nil, nil, func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true }, false)), "keyCertSign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects{"configmap:ns/sigstore/trusted_root.json": tc.json}
			spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"},
				Authorities: []chartproofv1.Authority{keylessAuthority("a", chartproofv1.Identity{Issuer: ghIssuer, Subject: "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"})}}
			_, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objs)
			if tc.wantText == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), "PKI-13") || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("Compile: %v; want a PKI-13 refusal naming %q", err, tc.wantText)
			}
		})
	}
}
