package policy

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// Binds reports whether a ClusterTrustPolicy spec (its namespaceSelector)
// binds the releases of a namespace with these labels; whether it judges a
// given release depends on its repositories too (Covers). It compiles
// nothing else of the policy, nor reads its trust material: the controller
// compiles only the mandatory policies that bind a release. A selector
// that does not parse is an error wrapping ErrInvalid (Compile refuses it
// too).
func Binds(spec chartproofv1.TrustPolicySpec, namespaceLabels map[string]string) (bool, error) {
	if spec.NamespaceSelector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(spec.NamespaceSelector)
	if err != nil {
		return false, fmt.Errorf("%w: namespaceSelector: %w", ErrInvalid, err)
	}
	return sel.Matches(labels.Set(namespaceLabels)), nil
}

// Combine decides a release under the policy it names and the mandatory
// policies that bind it and cover its chart (Binds and Covers), from each
// one's own verdict on the same digest (Evaluate):
//
//   - it passes only when every one of them passed;
//   - a failure is allowed only when the policy that failed is in Audit
//     mode, and the named policy's Audit mode counts only while no
//     mandatory policy in Enforce mode judges the release: a tenant's
//     policy cannot weaken the platform team's;
//   - with requireCluster (the manager's --require-cluster-policy), a
//     release judged by no ClusterTrustPolicy (it names a TrustPolicy and
//     no mandatory policy applies) is denied with NoClusterPolicy.
//
// The verdict names the named policy (Policy) and the mandatory ones
// (Mandatory); a reason or acceptance of a mandatory policy says which
// (Reason.Policy, Acceptance.Policy).
func Combine(named Verdict, mandatory []Verdict, requireCluster bool) Verdict {
	v := Verdict{Policy: named.Policy, Mode: named.Mode, Digest: named.Digest}
	enforced := false
	for _, m := range mandatory {
		v.Mandatory = append(v.Mandatory, m.Policy)
		enforced = enforced || m.Mode != chartproofv1.ModeAudit
	}
	allowed, inconclusive, conclusive := true, false, false
	for i, x := range append([]Verdict{named}, mandatory...) {
		under := ""
		if i > 0 {
			under = x.Policy.String()
		}
		if x.passed {
			for _, a := range x.Accepted {
				a.Policy = under
				v.Accepted = append(v.Accepted, a)
			}
			for _, a := range x.Attestations {
				a.Policy = under
				v.Attestations = append(v.Attestations, a)
			}
			continue
		}
		waived := x.audit && (i > 0 || !enforced)
		if !waived {
			allowed = false
			if x.Inconclusive {
				inconclusive = true
			} else {
				conclusive = true
			}
		}
		for _, r := range x.Reasons {
			if i == 0 && x.audit && enforced {
				r.Message += fmt.Sprintf(" (the Audit mode of %s does not apply: a mandatory ClusterTrustPolicy in Enforce mode binds this release)", x.Policy)
			}
			if under != "" {
				if hasReason(v.Reasons, r) {
					continue // the same fact about the evidence (an outage), said once
				}
				r.Policy, r.Message = under, "under "+under+": "+r.Message
			}
			v.Reasons = append(v.Reasons, r)
		}
	}
	// After the policies' own reasons, which say more about the chart.
	if requireCluster && named.Policy.Kind != "ClusterTrustPolicy" && len(mandatory) == 0 {
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonNoClusterPolicy,
			Message:  fmt.Sprintf("no ClusterTrustPolicy judges this release (it names %s): the manager requires one", named.Policy),
			Expected: "a ClusterTrustPolicy named by trustPolicyRef, or one whose namespaceSelector selects the namespace and whose repositories cover the chart",
		})
		allowed, conclusive = false, true
	}
	if len(v.Reasons) == 0 {
		v.passed = true
		return v
	}
	v.Accepted, v.Attestations = nil, nil // a denial accepts nobody
	v.audit = allowed
	v.Inconclusive = !allowed && inconclusive && !conclusive
	return v
}

// hasReason reports whether reasons already hold r's fact: the same code
// and message, a mandatory policy's prefix aside.
func hasReason(reasons []Reason, r Reason) bool {
	for _, x := range reasons {
		msg := x.Message
		if x.Policy != "" {
			msg = strings.TrimPrefix(msg, "under "+x.Policy+": ")
		}
		if x.Code == r.Code && msg == r.Message {
			return true
		}
	}
	return false
}

// CrossNamespace returns the error that refuses a release in namespace
// whose trustPolicyRef names another namespace's TrustPolicy
// (CrossNamespaceReference), or nil: a release is judged only by its own
// namespace's TrustPolicies or a ClusterTrustPolicy. The controller and the
// admission webhook both ask it.
func CrossNamespace(ref chartproofv1.TrustPolicyReference, namespace string) error {
	if ref.Namespace == "" || ref.Namespace == namespace || ref.Kind == "ClusterTrustPolicy" {
		return nil
	}
	return fmt.Errorf("trustPolicyRef names TrustPolicy %s/%s: a release uses only the TrustPolicies of its own namespace (%s) or a ClusterTrustPolicy",
		ref.Namespace, ref.Name, namespace)
}
