package gate_test

import (
	"context"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// TestSignatureRepository: with a signature repository (cosign's
// COSIGN_REPOSITORY), the chart's signatures are read there, and must still
// name the chart's digest: a trusted signature of another chart placed under
// this digest's tag there is SubjectMismatch (THREATS BND-01), beside the
// control; a signature repository that does not parse is InvalidSpec; a
// chart whose signatures lie only in the signature repository is unsigned
// without it; one the policy does not name is SignatureRepositoryNotAllowed,
// and nothing is read there (THREATS REG-09).
func TestSignatureRepository(t *testing.T) {
	reg := newRegistry(t, false)
	k, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories:          []string{reg.Host + "/charts/**"},
		SignatureRepositories: []string{reg.Host + "/sigs/*"},
		Authorities:           []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: k.PublicPEM()}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	chart := pushChart(t, reg, "charts/hello", "1.0.0")
	other := pushChart(t, reg, "charts/other/hello", "2.0.0")
	tests := []struct {
		name, sigRepo, payloadNames, wantCode string
	}{
		{"control: signed in the signature repository", "sigs/good", chart, chartproofv1.ReasonVerified},
		{"a signature of another chart under this digest", "sigs/swapped", other, chartproofv1.ReasonSubjectMismatch},
		{"no signature repository given", "", chart, chartproofv1.ReasonNoSignature},
		{"a signature repository that does not parse", "NOT A REPO", chart, chartproofv1.ReasonInvalidSpec},
		// REG-09: only a repository the policy names; nothing is read from
		// another (an address that would fail if dialled: RegistryUnavailable).
		{"a signature repository the policy does not name", "127.0.0.1:1/sigs/good", chart, chartproofv1.ReasonSignatureRepositoryNotAllowed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			where := tc.sigRepo
			if where == "" || where == "NOT A REPO" || where == "127.0.0.1:1/sigs/good" {
				where = "sigs/elsewhere" + itoa(i)
			}
			if err := reg.SignLegacy(where, chart, tc.payloadNames, k); err != nil {
				t.Fatal(err)
			}
			req := gate.Request{URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v}
			switch tc.sigRepo {
			case "":
			case "NOT A REPO":
				req.SignatureRepository = tc.sigRepo
			case "127.0.0.1:1/sigs/good":
				req.SignatureRepository = "oci://" + tc.sigRepo
			default:
				req.SignatureRepository = "oci://" + reg.Host + "/" + tc.sigRepo
			}
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, req)
			if res.Verdict.Code() != tc.wantCode {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), tc.wantCode)
			}
		})
	}
}
