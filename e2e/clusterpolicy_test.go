package e2e

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestRequireClusterPolicy (THREATS TEN-06): a manager started with
// --require-cluster-policy, under config/rbac, installs nothing that only a
// tenant's own TrustPolicy judges: a signed chart its TrustPolicy accepts is
// refused with NoClusterPolicy, and nothing is installed. The twin: once a
// platform team's ClusterTrustPolicy binds the namespace (its
// namespaceSelector selects it) and covers the chart, the same release is
// re-verified at once, by the policy's creation alone, and installed.
func TestRequireClusterPolicy(t *testing.T) {
	reg := startRegistry(t)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	d := pushChart(t, reg.Host, "charts/hello", "1.0.0")
	if err := (testsign.Registry{Host: reg.Host}).SignLegacy("charts/hello", d, d, key); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, "e2e-require-cluster-")
	mustCreate(t, newTrustPolicy(ns, "ci", reg.Host+"/charts/*", key.PublicPEM()))
	manager, _ := startManager(t, "--require-cluster-policy")

	mustCreate(t, newRelease(ns, "app", "oci://"+reg.Host+"/charts/hello", "1.0.0", "ci"))
	waitCondition(t, manager, ns, "app", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonNoClusterPolicy)
	checkNothingInstalled(t, ns, "app")

	spec := keyPolicySpec(reg.Host+"/charts/*", key.PublicPEM())
	spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	ctp := &chartproofv1.ClusterTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: ns + "-platform"}, Spec: spec}
	mustCreate(t, ctp)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ctp) })
	waitCondition(t, manager, ns, "app", chartproofv1.ConditionReady, metav1.ConditionTrue, chartproofv1.ReasonInstallSucceeded)
	checkInstalled(t, ns, "app", d)

	deleteReleases(t, manager, ns, "app")
	stopManager(t, manager)
}
