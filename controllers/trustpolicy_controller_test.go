package controllers_test

import (
	"context"
	"fmt"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestTrustPolicyStatus: a policy reports whether it can be used. A weak key
// passes the schema but not the policy compiler; its control twin, a strong
// key, is Ready.
func TestTrustPolicyStatus(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name, keyKind string
		cluster       bool
		wantStatus    metav1.ConditionStatus
		wantReason    string
	}{
		{"strong", "p256", false, metav1.ConditionTrue, chartproofv1.ReasonPolicyReady},
		{"weak", "rsa1024", false, metav1.ConditionFalse, chartproofv1.ReasonInvalidPolicy},
		{"cluster-strong", "ed25519", true, metav1.ConditionTrue, chartproofv1.ReasonPolicyReady},
		{"cluster-weak", "rsa1024", true, metav1.ConditionFalse, chartproofv1.ReasonInvalidPolicy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := testsign.NewKey(tc.keyKind)
			if err != nil {
				t.Fatal(err)
			}
			spec := chartproofv1.TrustPolicySpec{
				Repositories: []string{"registry.example.com/**"},
				Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: k.PublicPEM()}}},
			}
			var obj client.Object = &chartproofv1.TrustPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}, Spec: spec}
			if tc.cluster {
				obj = &chartproofv1.ClusterTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + tc.name}, Spec: spec}
			}
			if err := k8s.Create(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			waitFor(t, waitTimeout, "the policy's Ready condition", func() (bool, string) {
				if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}, obj); err != nil {
					return false, err.Error()
				}
				var conds []metav1.Condition
				switch o := obj.(type) {
				case *chartproofv1.TrustPolicy:
					conds = o.Status.Conditions
				case *chartproofv1.ClusterTrustPolicy:
					conds = o.Status.Conditions
				}
				c := apimeta.FindStatusCondition(conds, chartproofv1.ConditionReady)
				if c == nil {
					return false, "no Ready condition"
				}
				return c.Status == tc.wantStatus && c.Reason == tc.wantReason, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
			})
		})
	}
}
