package controllers_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestValuesChangeAppliedAtOnce (issue 13, item 5): a release whose values
// come from a ConfigMap, its interval an hour away, is upgraded with the
// new values within seconds of the ConfigMap's change: the manager watches
// what releases read values from (metadata only, each by its name) and the
// release reads the values again as its ServiceAccount. The first install
// is its control: the values it read are the ConfigMap's.
func TestValuesChangeAppliedAtOnce(t *testing.T) {
	f := newFixture(t)
	f.signLegacy(f.push("1.0.0"), f.key)
	f.policy("trusted", f.key, "")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "vals"}, Data: map[string]string{"values.yaml": "message: first\n"}}
	if err := k8s.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	f.release("app", "1.0.0", "trusted", func(v *chartproofv1.VerifiedHelmRelease) {
		v.Spec.Interval = metav1.Duration{Duration: time.Hour}
		v.Spec.ValuesFrom = []chartproofv1.ValuesReference{{Kind: "ConfigMap", Name: "vals"}}
	})
	f.waitReady("app", 1, chartproofv1.ReasonInstallSucceeded)
	if got := f.configMap("app").Data["message"]; got != "first" {
		t.Fatalf("message = %q, want first", got)
	}

	cm.Data["values.yaml"] = "message: second\n"
	if err := k8s.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	f.waitReady("app", 2, chartproofv1.ReasonUpgradeSucceeded)
	if got := f.configMap("app").Data["message"]; got != "second" {
		t.Errorf("message = %q, want second", got)
	}
}
