package admission_test

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
)

// TestHelmRecords: in an enforced namespace a Helm release record must be
// chartproof's (its owner label; whether the label is genuine is
// OwnedObjects' to judge); what is not a record is not guarded.
func TestHelmRecords(t *testing.T) {
	record := func(labels map[string]string) admission.Request {
		raw, err := json.Marshal(corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "sh.helm.release.v1.app.v1", Labels: labels}, Type: "helm.sh/release.v1"})
		if err != nil {
			t.Fatal(err)
		}
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "req", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
			Namespace: "team-a", Name: "sh.helm.release.v1.app.v1", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
	}
	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string
	}{
		{"a plain helm install's record", record(map[string]string{"owner": "helm", "name": "app", "status": "pending-install", "version": "1"}), chartproofv1.ReasonUnmanagedHelmRecord},
		{"twin: chartproof's record", record(map[string]string{"owner": "helm", "name": "app", chartproofv1.LabelOwner: uidA}), chartproofv1.ReasonChartproofActing},
		{"not a Helm record", record(map[string]string{"app": "x"}), chartproofv1.ReasonNotGuarded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := (&cpadmission.HelmRecords{}).Handle(context.Background(), tc.req)
			if got := resp.AuditAnnotations["reason"]; got != tc.reason {
				t.Fatalf("reason %s (%s), want %s", got, resp.Result.Message, tc.reason)
			}
			if want := tc.reason != chartproofv1.ReasonUnmanagedHelmRecord; resp.Allowed != want {
				t.Errorf("allowed %v, want %v", resp.Allowed, want)
			}
		})
	}
}
