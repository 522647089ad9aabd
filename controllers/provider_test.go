package controllers_test

import (
	"context"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestCloudProviderNeedsManagerOptIn: a release asking to log in with the
// manager's cloud identity (spec.chart.provider gcp) is refused with
// InvalidSpec, saying so, when the manager does not lend it
// (--allow-controller-cloud-identity, off in this suite): a tenant cannot
// read what the manager's cloud identity may. Its twin with the generic
// provider is installed. The API server refuses a provider with secretRef,
// and one over plain HTTP (a cloud token would travel in the clear).
func TestCloudProviderNeedsManagerOptIn(t *testing.T) {
	for _, provider := range []string{"generic", "gcp"} {
		t.Run(provider, func(t *testing.T) {
			f := newFixture(t)
			digest := f.push("1.0.0")
			f.signLegacy(digest, f.key)
			f.policy("ci", f.key, chartproofv1.ModeEnforce)
			f.release("app", "1.0.0", "ci", func(vhr *chartproofv1.VerifiedHelmRelease) {
				vhr.Spec.Chart.Provider = provider
				if provider != "generic" {
					vhr.Spec.Chart.Insecure = false // a cloud token never travels over plain HTTP (CEL); refused before any request anyway
				}
			})
			if provider == "generic" {
				f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
				return
			}
			vhr := f.waitCondition("app", chartproofv1.ConditionStalled, metav1.ConditionTrue, chartproofv1.ReasonInvalidSpec)
			if c := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionStalled); c == nil || !strings.Contains(c.Message, "--allow-controller-cloud-identity") {
				t.Fatalf("Stalled = %+v, want it to name --allow-controller-cloud-identity", c)
			}
			if cm := f.configMap("app"); cm != nil {
				t.Fatalf("ConfigMap %s exists, want nothing installed", cm.Name)
			}
		})
	}
	f := newFixture(t)
	vhr := &chartproofv1.VerifiedHelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "both"},
		Spec: chartproofv1.VerifiedHelmReleaseSpec{
			Chart:          chartproofv1.ChartSource{URL: f.url(), Version: "1.0.0", Provider: "aws", SecretRef: &chartproofv1.LocalObjectReference{Name: "creds"}},
			TrustPolicyRef: chartproofv1.TrustPolicyReference{Name: "ci"},
		},
	}
	if err := k8s.Create(context.Background(), vhr); err == nil || !strings.Contains(err.Error(), "it cannot be set with secretRef") {
		t.Fatalf("a provider with secretRef: %v, want refused", err)
	}
	vhr.Spec.Chart.SecretRef, vhr.Spec.Chart.Insecure = nil, true
	if err := k8s.Create(context.Background(), vhr); err == nil || !strings.Contains(err.Error(), "it cannot be set with insecure") {
		t.Fatalf("a provider over plain HTTP: %v, want refused", err)
	}
}
