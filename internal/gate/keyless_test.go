package gate_test

import (
	"context"
	"errors"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// configMaps is a policy.Reader serving one trusted root from ConfigMap
// infra/sigstore.
type configMaps map[string][]byte

func (c configMaps) Secret(chartproofv1.SecretKeyReference) ([]byte, error) {
	return nil, errors.New("no secrets")
}

func (c configMaps) ConfigMap(namespace, name, key string) ([]byte, error) {
	b, ok := c[namespace+"/"+name+"/"+key]
	if !ok {
		return nil, errors.New("not found")
	}
	return b, nil
}

// TestCheckKeylessBundle signs a chart keyless with a throwaway Sigstore,
// attaches the bundle as an OCI referrer, and checks it end to end: the
// policy naming the release workflow accepts it and reports the signer, the
// log entry and the signing time; the policy naming another workflow
// refuses it with IdentityMismatch.
func TestCheckKeylessBundle(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
	)
	reg := newRegistry(t, true)
	digest := pushChart(t, reg, "charts/hello", "1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := s.SignKeyless(testsign.Statement(reg.Host+"/charts/hello", digest), testsign.KeylessOptions{
		Cert: testsign.Cert{URI: workflow, Issuer: issuer, Extensions: map[string]string{"sourceRepositoryURI": "https://github.com/org/charts"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AttachBundle("charts/hello", digest, bundle, false); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		subject string
		want    string
	}{
		{"release workflow", `https://github\.com/org/charts/\.github/workflows/release\.yaml@refs/tags/v.*`, chartproofv1.ReasonVerified},
		{"another workflow", `https://github\.com/org/charts/\.github/workflows/nightly\.yaml@.*`, chartproofv1.ReasonIdentityMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
				Repositories: []string{reg.Host + "/charts/**"},
				Authorities: []chartproofv1.Authority{{Name: "release", Keyless: &chartproofv1.KeylessAuthority{
					TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Namespace: "infra", Name: "sigstore"}},
					Identities:  []chartproofv1.Identity{{Issuer: issuer, SubjectRegExp: tc.subject}},
				}}},
			}, configMaps{"infra/sigstore/trusted_root.json": rootJSON})
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.New(p.Authorities)
			if err != nil {
				t.Fatal(err)
			}
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			if got := res.Verdict.Code(); got != tc.want {
				t.Fatalf("Check: %s (%s), want %s", got, res.Verdict.Message(), tc.want)
			}
			if tc.want != chartproofv1.ReasonVerified {
				return
			}
			a := res.Verdict.Accepted[0]
			if a.Layout != policy.LayoutSigstoreBundle || a.Identity == nil || a.Identity.Subject != workflow || a.Identity.Issuer != issuer || a.Log == nil || a.SignedAt == nil {
				t.Fatalf("accepted %+v; want the bundle layout, subject %s, issuer %s, a log entry and a signing time", a, workflow, issuer)
			}
			loaded := gate.Load(context.Background(), client, nil, res)
			if loaded.Chart == nil {
				t.Fatalf("Load: no chart, reasons %+v", loaded.Verdict.Reasons)
			}
		})
	}
}
