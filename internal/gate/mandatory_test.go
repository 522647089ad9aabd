package gate_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// mandatoryPolicy compiles a mandatory ClusterTrustPolicy over repos
// trusting k, in mode.
func mandatoryPolicy(t *testing.T, name string, repos []string, k *testsign.Key, mode chartproofv1.Mode) gate.Judge {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: name}, chartproofv1.TrustPolicySpec{
		Repositories:      repos,
		Authorities:       []chartproofv1.Authority{{Name: "platform", Key: &chartproofv1.KeyAuthority{PublicKey: k.PublicPEM()}}},
		Mode:              mode,
		NamespaceSelector: &metav1.LabelSelector{},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	return gate.Judge{Policy: p, Verifier: v}
}

// TestCheckMandatory: one resolution, judged by the named policy and by
// every mandatory policy covering the chart (THREATS TEN-06). A chart the
// named policy accepts is refused by a mandatory policy whose signer did
// not sign it; the twins pass: the mandatory signer signed too, or the
// mandatory policy does not cover the repository. Load judges the content
// under every policy again.
func TestCheckMandatory(t *testing.T) {
	reg := newRegistry(t, true)
	tenant, _ := testsign.NewKey("p256")
	platform, _ := testsign.NewKey("p256")
	digest := pushChart(t, reg, "charts/hello", "1.0.0")
	if err := reg.SignLegacy("charts/hello", digest, digest, tenant); err != nil {
		t.Fatal(err)
	}
	named, verifier := compile(t, reg.Host, tenant)
	client := oci.NewClient(oci.Options{PlainHTTP: true})
	check := func(mandatory ...gate.Judge) gate.Result {
		return gate.Check(context.Background(), client, nil, gate.Request{
			URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: named, Verifier: verifier, Mandatory: mandatory,
		})
	}
	covering := []string{reg.Host + "/charts/**"}

	res := check(mandatoryPolicy(t, "platform", covering, platform, ""))
	if res.Verdict.Allowed() || res.Verdict.Code() != chartproofv1.ReasonUntrustedSigner || res.Verdict.Reasons[0].Policy != "ClusterTrustPolicy platform" {
		t.Fatalf("Check with a mandatory policy the chart does not satisfy: allowed %v code %s reasons %+v; want UntrustedSigner under ClusterTrustPolicy platform",
			res.Verdict.Allowed(), res.Verdict.Code(), res.Verdict.Reasons)
	}
	if loaded := gate.Load(context.Background(), client, nil, res); loaded.Chart != nil {
		t.Fatal("Load read a chart the mandatory policy refused")
	}

	res = check(mandatoryPolicy(t, "elsewhere", []string{reg.Host + "/other/**"}, platform, ""))
	if !res.Verdict.Passed() || len(res.Verdict.Mandatory) != 0 {
		t.Errorf("Check with a mandatory policy that does not cover the chart: passed %v, mandatory %v; want passed, none", res.Verdict.Passed(), res.Verdict.Mandatory)
	}

	if err := reg.SignLegacy("charts/hello", digest, digest, platform); err != nil {
		t.Fatal(err)
	}
	res = check(mandatoryPolicy(t, "platform", covering, platform, ""))
	if !res.Verdict.Passed() || len(res.Verdict.Mandatory) != 1 {
		t.Fatalf("Check signed by both: passed %v reasons %+v mandatory %v; want passed under both", res.Verdict.Passed(), res.Verdict.Reasons, res.Verdict.Mandatory)
	}
	loaded := gate.Load(context.Background(), client, nil, res)
	if loaded.Chart == nil || !loaded.Verdict.Passed() || len(loaded.Verdict.Mandatory) != 1 {
		t.Fatalf("Load: chart %v verdict %+v; want the chart, judged under both", loaded.Chart != nil, loaded.Verdict)
	}
	if !res.Verdict.Passed() || res.Verdict.Mandatory == nil {
		t.Error("Load changed the Check result it was given")
	}
}
