package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// mandatoryLabel is the namespace label the tests' mandatory
// ClusterTrustPolicies select on; its value is the test's namespace, so a
// test binds only its own.
const mandatoryLabel = "test.chartproof.dev/platform"

// clusterPolicy creates a mandatory ClusterTrustPolicy trusting key for the
// fixture's repositories, binding namespaces labelled mandatoryLabel=f.ns.
func (f *fixture) clusterPolicy(key *testsign.Key, mode chartproofv1.Mode) string {
	f.t.Helper()
	ctp := &chartproofv1.ClusterTrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-platform"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories:      []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities:       []chartproofv1.Authority{{Name: "platform", Key: &chartproofv1.KeyAuthority{PublicKey: key.PublicPEM()}}},
			Mode:              mode,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{mandatoryLabel: f.ns}},
		},
	}
	if err := k8s.Create(context.Background(), ctp); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = k8s.Delete(context.Background(), ctp) })
	return ctp.Name
}

// labelNamespace sets label key=value on the fixture's namespace.
func (f *fixture) labelNamespace(key, value string) {
	f.t.Helper()
	var ns corev1.Namespace
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: f.ns}, &ns); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[key] = value
	if err := k8s.Patch(context.Background(), &ns, patch); err != nil {
		f.t.Fatal(err)
	}
}

// TestMandatoryClusterPolicy (THREATS TEN-06): a platform team's
// ClusterTrustPolicy with a namespaceSelector binds the releases of the
// namespaces it selects, whatever policy they name. Control first: before
// the namespace is labelled, the tenant's own TrustPolicy installs the
// chart (Enforce: signed by the tenant's key; Audit: not signed at all).
// Labelling the namespace re-verifies the release at once (no change to
// the release), and the mandatory policy refuses it; the tenant's Audit
// mode does not weaken it. Once the platform's key signs too, the Enforce
// tenant's release verifies under both policies (the evidence names the
// mandatory one); the Audit tenant's stays refused: its own policy still
// fails, and its Audit mode does not apply.
func TestMandatoryClusterPolicy(t *testing.T) {
	for _, mode := range []chartproofv1.Mode{chartproofv1.ModeEnforce, chartproofv1.ModeAudit} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t)
			platform, err := testsign.NewKey("p256")
			if err != nil {
				t.Fatal(err)
			}
			digest := f.push("1.0.0")
			tenantCode := chartproofv1.ReasonVerified
			if mode == chartproofv1.ModeEnforce {
				f.signLegacy(digest, f.key)
			} else {
				tenantCode = chartproofv1.ReasonNoSignature
			}
			f.policy("own", f.key, mode)
			ctp := f.clusterPolicy(platform, chartproofv1.ModeEnforce)
			f.release("app", "1.0.0", "own")
			installed := chartproofv1.ReasonInstallSucceeded
			if mode == chartproofv1.ModeAudit {
				installed = chartproofv1.ReasonAuditOnly
			}
			f.waitEvent("app", installed)
			f.waitCondition("app", chartproofv1.ConditionVerified, verifiedStatus(tenantCode), tenantCode)

			f.labelNamespace(mandatoryLabel, f.ns)
			wantCode := chartproofv1.ReasonUntrustedSigner // the tenant's signature, which the platform does not trust
			if mode == chartproofv1.ModeAudit {
				wantCode = chartproofv1.ReasonNoSignature
			}
			wantMsg := "under ClusterTrustPolicy " + ctp
			if mode == chartproofv1.ModeAudit {
				wantMsg = "Audit mode of TrustPolicy " + f.ns + "/own does not apply"
			}
			vhr := f.waitVerified("app", metav1.ConditionFalse, wantCode, wantMsg)
			if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %+v; want False", c)
			}

			f.signLegacy(digest, platform)
			f.touch("app")
			if mode == chartproofv1.ModeAudit {
				// The platform's signature is one the tenant's policy does not trust.
				vhr = f.waitVerified("app", metav1.ConditionFalse, chartproofv1.ReasonUntrustedSigner, wantMsg)
				if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse {
					t.Errorf("Ready = %+v; want False: the tenant's Audit mode does not apply", c)
				}
				return
			}
			vhr = f.waitCondition("app", chartproofv1.ConditionVerified, metav1.ConditionTrue, chartproofv1.ReasonVerified)
			var policies []string
			for _, e := range vhr.Status.Evidence {
				policies = append(policies, fmt.Sprintf("%q/%s", e.Policy, e.Authority))
			}
			if want := fmt.Sprintf(`""/ci "ClusterTrustPolicy %s"/platform`, ctp); strings.Join(policies, " ") != want {
				t.Errorf("status.evidence policies/authorities = %v; want %s", policies, want)
			}
			f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
		})
	}
}

// waitVerified waits until the release's Verified condition has status and
// reason, and its message contains msg.
func (f *fixture) waitVerified(name string, status metav1.ConditionStatus, reason, msg string) *chartproofv1.VerifiedHelmRelease {
	f.t.Helper()
	var vhr *chartproofv1.VerifiedHelmRelease
	waitFor(f.t, waitTimeout, fmt.Sprintf("%s Verified=%s reason %s saying %q", name, status, reason, msg), func() (bool, string) {
		vhr = f.get(name)
		c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionVerified)
		if c == nil {
			return false, "no Verified condition"
		}
		return c.Status == status && c.Reason == reason && strings.Contains(c.Message, msg),
			fmt.Sprintf("Verified=%s reason %s: %s", c.Status, c.Reason, c.Message)
	})
	return vhr
}

// verifiedStatus is the Verified condition's status for a verdict code.
func verifiedStatus(code string) metav1.ConditionStatus {
	if code == chartproofv1.ReasonVerified {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// TestTrustPolicyCannotBeMandatory: only a platform team's
// ClusterTrustPolicy may bind namespaces; the API server refuses a
// TrustPolicy with a namespaceSelector.
func TestTrustPolicyCannotBeMandatory(t *testing.T) {
	f := newFixture(t)
	tp := &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sneaky"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories:      []string{regHost + "/charts/**"},
			Authorities:       []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: f.key.PublicPEM()}}},
			NamespaceSelector: &metav1.LabelSelector{},
		},
	}
	err := k8s.Create(context.Background(), tp)
	if err == nil || !strings.Contains(err.Error(), "only a ClusterTrustPolicy may set it") {
		t.Errorf("creating a TrustPolicy with a namespaceSelector: %v; want it refused", err)
	}
	tp.Spec.NamespaceSelector = nil
	if err := k8s.Create(context.Background(), tp); err != nil {
		t.Errorf("the twin without namespaceSelector: %v", err)
	}
}

// TestUnboundMandatoryPolicyIgnored: a mandatory ClusterTrustPolicy that
// cannot be compiled (its key Secret is missing) denies the releases it
// binds (InvalidPolicy), and only those: a release in a namespace it does
// not select installs under its own policy, and its trust material is not
// even read. The twin labels the namespace, and the same release is
// refused.
func TestUnboundMandatoryPolicyIgnored(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("own", f.key, chartproofv1.ModeEnforce)
	ctp := &chartproofv1.ClusterTrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-broken"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories:      []string{regHost + "/charts/" + f.ns + "/*"},
			Authorities:       []chartproofv1.Authority{{Name: "platform", Key: &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "absent", Namespace: f.ns}}}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{mandatoryLabel: f.ns}},
		},
	}
	if err := k8s.Create(context.Background(), ctp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ctp) })

	f.release("app", "1.0.0", "own")
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)

	f.labelNamespace(mandatoryLabel, f.ns)
	f.waitCondition("app", chartproofv1.ConditionReady, metav1.ConditionFalse, chartproofv1.ReasonInvalidPolicy)
}
