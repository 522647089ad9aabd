package policy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// Binds reports whether p, a mandatory ClusterTrustPolicy, binds the
// releases of a namespace with these labels. Whether it judges a given
// release depends on its repositories too (Covers).
func (p *Policy) Binds(namespaceLabels map[string]string) bool {
	return p != nil && p.Selector != nil && p.Selector.Matches(labels.Set(namespaceLabels))
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
	if requireCluster && named.Policy.Kind != "ClusterTrustPolicy" && len(mandatory) == 0 {
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonNoClusterPolicy,
			Message:  fmt.Sprintf("no ClusterTrustPolicy judges this release (it names %s): the manager requires one", named.Policy),
			Expected: "a ClusterTrustPolicy named by trustPolicyRef, or one whose namespaceSelector selects the namespace and whose repositories cover the chart",
		})
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
	if len(v.Reasons) == 0 {
		v.passed = true
		return v
	}
	v.Accepted = nil // a denial accepts nobody
	if v.Reasons[0].Code == chartproofv1.ReasonNoClusterPolicy {
		return v
	}
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
