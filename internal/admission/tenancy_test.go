package admission_test

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	cpadmission "github.com/chartproof/chartproof/internal/admission"
	"github.com/chartproof/chartproof/internal/identity"
)

// TestTenancy: each tenancy rule refuses what breaks it and admits its twin
// (e2e.TestAdmission runs the same against the real API server's
// SubjectAccessReviews).
func TestTenancy(t *testing.T) {
	// The API server's answer to a SubjectAccessReview, stood in for: the
	// releases' account may create Secrets in team-a only.
	reviews := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			sar := obj.(*authorizationv1.SubjectAccessReview)
			a := sar.Spec.ResourceAttributes
			sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:team-a:deployer" && a.Namespace == "team-a" && a.Verb == "create" && a.Resource == "secrets"
			return nil
		},
	}).Build()
	g := &cpadmission.Tenancy{
		ServiceAccountFor: func(named string) (string, error) {
			if named == "" {
				return "", identity.ErrNoServiceAccount
			}
			return named, nil
		},
		Reviews: reviews,
		MandatoryFor: func(_ context.Context, ns string) ([]string, error) {
			if ns == "regulated" {
				return []string{"baseline"}, nil
			}
			return nil, nil
		},
	}
	release := func(edit func(*chartproofv1.VerifiedHelmReleaseSpec)) admission.Request {
		spec := chartproofv1.VerifiedHelmReleaseSpec{TrustPolicyRef: chartproofv1.TrustPolicyReference{Kind: "TrustPolicy", Name: "ci"}, ServiceAccountName: "deployer"}
		edit(&spec)
		return objectRequest(t, "VerifiedHelmRelease", "team-a", chartproofv1.VerifiedHelmRelease{Spec: spec})
	}
	policy := func(ns string, mode chartproofv1.Mode) admission.Request {
		return objectRequest(t, "TrustPolicy", ns, chartproofv1.TrustPolicy{Spec: chartproofv1.TrustPolicySpec{Mode: mode}})
	}
	// update is an update of a release from before to after (spec edits).
	update := func(before, after func(*chartproofv1.VerifiedHelmReleaseSpec), deleting bool) admission.Request {
		old, req := release(before), release(after)
		req.Operation, req.OldObject = admissionv1.Update, old.Object
		if deleting {
			// What the API server sends when a finalizer is removed from
			// a release being deleted.
			var vhr map[string]any
			if err := json.Unmarshal(req.Object.Raw, &vhr); err != nil {
				t.Fatal(err)
			}
			vhr["metadata"] = map[string]any{"deletionTimestamp": "2026-12-04T00:00:00Z"}
			raw, err := json.Marshal(vhr)
			if err != nil {
				t.Fatal(err)
			}
			req.Object.Raw = raw
		}
		return req
	}
	elsewhere := func(s *chartproofv1.VerifiedHelmReleaseSpec) { s.TargetNamespace = "kube-system" }
	for _, tc := range []struct {
		name   string
		req    admission.Request
		reason string
	}{
		// A release whose account may no longer write where its records
		// are (its namespace torn down) can still lose its finalizer; its
		// twin changes the spec, and is judged.
		{"a finalizer removed, the spec unchanged", update(elsewhere, elsewhere, true), chartproofv1.ReasonTenancyChecked},
		{"twin: the spec changed in the same update", update(elsewhere, func(s *chartproofv1.VerifiedHelmReleaseSpec) {
			elsewhere(s)
			s.ServiceAccountName = "admin"
		}, true), chartproofv1.ReasonTargetNamespaceForbidden},
		{"a release as it should be", release(func(*chartproofv1.VerifiedHelmReleaseSpec) {}), chartproofv1.ReasonTenancyChecked},
		{"another namespace's TrustPolicy", release(func(s *chartproofv1.VerifiedHelmReleaseSpec) { s.TrustPolicyRef.Namespace = "team-b" }), chartproofv1.ReasonCrossNamespaceReference},
		{"twin: its own namespace named", release(func(s *chartproofv1.VerifiedHelmReleaseSpec) { s.TrustPolicyRef.Namespace = "team-a" }), chartproofv1.ReasonTenancyChecked},
		{"records where its account may not write", release(func(s *chartproofv1.VerifiedHelmReleaseSpec) { s.TargetNamespace = "kube-system" }), chartproofv1.ReasonTargetNamespaceForbidden},
		{"objects elsewhere, records at home", release(func(s *chartproofv1.VerifiedHelmReleaseSpec) {
			s.TargetNamespace, s.StorageNamespace = "team-b", "team-a"
		}), chartproofv1.ReasonTenancyChecked},
		{"no ServiceAccount and no default", release(func(s *chartproofv1.VerifiedHelmReleaseSpec) { s.ServiceAccountName = "" }), chartproofv1.ReasonServiceAccountRequired},
		{"an Audit policy where a mandatory one binds", policy("regulated", chartproofv1.ModeAudit), chartproofv1.ReasonWeakerThanMandatory},
		{"twin: an Enforce policy there", policy("regulated", chartproofv1.ModeEnforce), chartproofv1.ReasonTenancyChecked},
		{"twin: an Audit policy where none binds", policy("team-a", chartproofv1.ModeAudit), chartproofv1.ReasonTenancyChecked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := g.Handle(context.Background(), tc.req)
			if got := resp.AuditAnnotations["reason"]; got != tc.reason {
				t.Fatalf("reason %s (%s), want %s", got, resp.Result.Message, tc.reason)
			}
			if want := tc.reason == chartproofv1.ReasonTenancyChecked; resp.Allowed != want {
				t.Errorf("allowed %v, want %v", resp.Allowed, want)
			}
		})
	}
}

func objectRequest(t *testing.T, kind, ns string, obj any) admission.Request {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "req",
		Kind: metav1.GroupVersionKind{Group: chartproofv1.GroupVersion.Group, Version: "v1alpha1", Kind: kind}, Namespace: ns, Name: "x",
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
}
