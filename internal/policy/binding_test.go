package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// clusterPolicy compiles a mandatory ClusterTrustPolicy trusting names.
func clusterPolicy(t *testing.T, name string, mode chartproofv1.Mode, names ...string) *policy.Policy {
	t.Helper()
	spec := keySpec(1, mode, names...)
	spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "prod"}}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: name}, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCombine: a release must satisfy the policy it names and every
// mandatory policy that binds it; the named policy's Audit mode does not
// weaken a mandatory Enforce policy (THREATS TEN-06). Each attack has its
// control twin in the table.
func TestCombine(t *testing.T) {
	byAlice := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}}
	// The same signature, checked by a policy that does not trust alice.
	unknown := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{{Layout: policy.LayoutCosignLegacy, Ref: "sha256:sig", Problem: "no authority's key verifies it"}}}
	outage := policy.Evidence{Repository: repo, Digest: digestA, Failure: &policy.Failure{Code: chartproofv1.ReasonRegistryUnavailable, Message: "registry down", Inconclusive: true}}

	enforce := compile(t, keySpec(1, chartproofv1.ModeEnforce, "alice"))
	audit := compile(t, keySpec(1, chartproofv1.ModeAudit, "bob"))
	ctpAlice := clusterPolicy(t, "platform", chartproofv1.ModeEnforce, "alice")
	ctpCarol := clusterPolicy(t, "platform", chartproofv1.ModeEnforce, "carol")
	ctpCarolAudit := clusterPolicy(t, "platform", chartproofv1.ModeAudit, "carol")
	namedCTP, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "shared"}, keySpec(1, "", "alice"), nil)
	if err != nil {
		t.Fatal(err)
	}

	type judged struct {
		p  *policy.Policy
		ev policy.Evidence
	}
	tests := []struct {
		name           string
		named          judged
		mandatory      []judged
		requireCluster bool
		wantPassed     bool
		wantAllowed    bool
		wantInconc     bool
		wantCode       string
		wantPolicy     string // Reasons[0].Policy
	}{
		{name: "control: named and mandatory both pass", named: judged{enforce, byAlice}, mandatory: []judged{{ctpAlice, byAlice}},
			wantPassed: true, wantAllowed: true, wantCode: chartproofv1.ReasonVerified},
		{name: "mandatory policy refuses what the named one accepts", named: judged{enforce, byAlice}, mandatory: []judged{{ctpCarol, unknown}},
			wantCode: chartproofv1.ReasonUntrustedSigner, wantPolicy: "ClusterTrustPolicy platform"},
		{name: "control: the tenant's Audit policy alone installs", named: judged{audit, unknown},
			wantAllowed: true, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "the tenant's Audit does not apply under a mandatory Enforce policy", named: judged{audit, unknown}, mandatory: []judged{{ctpAlice, byAlice}},
			wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "a mandatory policy in Audit mode audits", named: judged{enforce, byAlice}, mandatory: []judged{{ctpCarolAudit, unknown}},
			wantAllowed: true, wantCode: chartproofv1.ReasonUntrustedSigner, wantPolicy: "ClusterTrustPolicy platform"},
		{name: "both in Audit mode audit", named: judged{audit, unknown}, mandatory: []judged{{ctpCarolAudit, unknown}},
			wantAllowed: true, wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "required cluster policy missing", named: judged{enforce, byAlice}, requireCluster: true,
			wantCode: chartproofv1.ReasonNoClusterPolicy},
		{name: "required cluster policy missing, and the chart refused: the chart's reason first", named: judged{enforce, unknown}, requireCluster: true,
			wantCode: chartproofv1.ReasonUntrustedSigner},
		{name: "control: required cluster policy is a mandatory one", named: judged{enforce, byAlice}, mandatory: []judged{{ctpAlice, byAlice}}, requireCluster: true,
			wantPassed: true, wantAllowed: true, wantCode: chartproofv1.ReasonVerified},
		{name: "control: required cluster policy is the named one", named: judged{namedCTP, byAlice}, requireCluster: true,
			wantPassed: true, wantAllowed: true, wantCode: chartproofv1.ReasonVerified},
		{name: "an outage is inconclusive under every policy", named: judged{enforce, outage}, mandatory: []judged{{ctpAlice, outage}},
			wantInconc: true, wantCode: chartproofv1.ReasonRegistryUnavailable},
		{name: "a conclusive refusal is not made inconclusive by an outage", named: judged{audit, unknown}, mandatory: []judged{{ctpAlice, outage}},
			wantCode: chartproofv1.ReasonUntrustedSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mandatory []policy.Verdict
			for _, m := range tc.mandatory {
				mandatory = append(mandatory, policy.Evaluate(m.p, m.ev))
			}
			v := policy.Combine(policy.Evaluate(tc.named.p, tc.named.ev), mandatory, tc.requireCluster)
			if v.Passed() != tc.wantPassed || v.Allowed() != tc.wantAllowed || v.Inconclusive != tc.wantInconc || v.Code() != tc.wantCode {
				t.Fatalf("Combine() = passed %v allowed %v inconclusive %v code %s (%s); want %v %v %v %s",
					v.Passed(), v.Allowed(), v.Inconclusive, v.Code(), v.Message(), tc.wantPassed, tc.wantAllowed, tc.wantInconc, tc.wantCode)
			}
			if !v.Passed() && v.Reasons[0].Policy != tc.wantPolicy {
				t.Errorf("Reasons[0].Policy = %q; want %q", v.Reasons[0].Policy, tc.wantPolicy)
			}
			if v.Passed() && len(v.Accepted) != 1+len(tc.mandatory) {
				t.Errorf("Accepted = %+v; want one authority per policy", v.Accepted)
			}
			if len(v.Mandatory) != len(tc.mandatory) {
				t.Errorf("Mandatory = %v; want %d policies", v.Mandatory, len(tc.mandatory))
			}
		})
	}
}

// TestCombineSaysWhy: the message names the mandatory policy that refused,
// and says when the named policy's Audit mode was not honoured; an outage
// seen by every policy is said once.
func TestCombineSaysWhy(t *testing.T) {
	unknown := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{{Layout: policy.LayoutCosignLegacy, Ref: "sha256:sig", Problem: "no authority's key verifies it"}}}
	byAlice := policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}}
	outage := policy.Evidence{Repository: repo, Digest: digestA, Failure: &policy.Failure{Code: chartproofv1.ReasonRegistryUnavailable, Message: "registry down", Inconclusive: true}}
	audit := compile(t, keySpec(1, chartproofv1.ModeAudit, "bob"))
	ctp := clusterPolicy(t, "platform", chartproofv1.ModeEnforce, "alice")

	v := policy.Combine(policy.Evaluate(audit, unknown), []policy.Verdict{policy.Evaluate(ctp, byAlice)}, false)
	if !strings.Contains(v.Message(), "Audit mode of TrustPolicy ns/p does not apply") {
		t.Errorf("Message() = %q; want it to say the Audit mode does not apply", v.Message())
	}
	v = policy.Combine(policy.Evaluate(compile(t, keySpec(1, "", "alice")), byAlice), []policy.Verdict{policy.Evaluate(clusterPolicy(t, "platform", "", "carol"), unknown)}, false)
	if !strings.HasPrefix(v.Reasons[0].Message, "under ClusterTrustPolicy platform: ") {
		t.Errorf("Reasons[0].Message = %q; want it to name the mandatory policy", v.Reasons[0].Message)
	}
	v = policy.Combine(policy.Evaluate(audit, outage), []policy.Verdict{policy.Evaluate(ctp, outage)}, false)
	if diff := cmp.Diff([]string{chartproofv1.ReasonRegistryUnavailable}, codes(v.Reasons)); diff != "" {
		t.Errorf("reasons of one outage (-want +got):\n%s", diff)
	}
	v = policy.Combine(policy.Evaluate(compile(t, keySpec(1, "", "alice")), byAlice), []policy.Verdict{policy.Evaluate(ctp, byAlice)}, false)
	if want := "; under ClusterTrustPolicy platform by alice"; !strings.HasSuffix(v.Message(), want) {
		t.Errorf("Message() = %q; want it to end %q", v.Message(), want)
	}
}

func codes(rs []policy.Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

// TestBinds: a ClusterTrustPolicy's namespaceSelector binds the namespaces
// it selects; a TrustPolicy cannot have one, nor can a selector that does
// not parse.
func TestBinds(t *testing.T) {
	binds := func(spec chartproofv1.TrustPolicySpec, labels map[string]string) bool {
		t.Helper()
		ok, err := policy.Binds(spec, labels)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	prod := keySpec(1, "", "alice")
	prod.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "prod"}}
	if !binds(prod, map[string]string{"tier": "prod", "team": "a"}) {
		t.Error("Binds(tier=prod) = false; want true")
	}
	if binds(prod, map[string]string{"tier": "dev"}) || binds(prod, nil) {
		t.Error("Binds(tier=dev or no labels) = true; want false")
	}
	all := keySpec(1, "", "alice")
	all.NamespaceSelector = &metav1.LabelSelector{}
	_, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "all"}, all, nil)
	if err != nil || !binds(all, nil) {
		t.Errorf("a {} selector: Compile() error %v, Binds(nil) = %v; want every namespace bound", err, err == nil && binds(all, nil))
	}
	if binds(keySpec(1, "", "alice"), map[string]string{"tier": "prod"}) {
		t.Error("a policy without namespaceSelector binds a namespace")
	}
	if _, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, all, nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("a TrustPolicy with namespaceSelector: Compile() error = %v; want ErrInvalid", err)
	}
	bad := keySpec(1, "", "alice")
	bad.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}
	if _, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "bad"}, bad, nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("a selector that does not parse: Compile() error = %v; want ErrInvalid", err)
	}
	if _, err := policy.Binds(bad, nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("a selector that does not parse: Binds() error = %v; want ErrInvalid", err)
	}
}
