package controllers_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestCRDValidation applies impossible policy combinations to the real API
// server: each must be refused with its message, and the control (a valid
// policy of the same shape) accepted.
func TestCRDValidation(t *testing.T) {
	ns := newNamespace(t)
	k, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	pem := k.PublicPEM()
	good := func() chartproofv1.TrustPolicySpec {
		return chartproofv1.TrustPolicySpec{
			Repositories: []string{"registry.example.com/team/*"},
			Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: pem}}},
		}
	}
	tests := []struct {
		name    string
		cluster bool
		mut     func(*chartproofv1.TrustPolicySpec)
		want    string // part of the API server's message; empty for a control
	}{
		{"control", false, func(*chartproofv1.TrustPolicySpec) {}, ""},
		{"control: cluster policy with a namespaced secretRef", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k", Namespace: "ns"}}
		}, ""},
		{"authority without key", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = nil }, "an authority needs exactly one of: key"},
		{"key with publicKey and secretRef", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.SecretRef = &chartproofv1.SecretKeyReference{Name: "k"}
		}, "set exactly one of publicKey and secretRef"},
		{"key with neither", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = &chartproofv1.KeyAuthority{} }, "set exactly one of publicKey and secretRef"},
		{"threshold above authorities", false, func(s *chartproofv1.TrustPolicySpec) { s.Threshold = 2 }, "threshold cannot exceed the number of authorities"},
		{"threshold below one", false, func(s *chartproofv1.TrustPolicySpec) { s.Threshold = -1 }, "should be greater than or equal to 1"},
		{"unknown mode", false, func(s *chartproofv1.TrustPolicySpec) { s.Mode = "Permissive" }, "Unsupported value"},
		{"no repositories", false, func(s *chartproofv1.TrustPolicySpec) { s.Repositories = nil }, "repositories"},
		{"oci:// in a repository glob", false, func(s *chartproofv1.TrustPolicySpec) { s.Repositories = []string{"oci://r.example/x"} }, "repositories"},
		{"duplicate authority names", false, func(s *chartproofv1.TrustPolicySpec) { s.Authorities = append(s.Authorities, s.Authorities[0]) }, "Duplicate value"},
		{"namespaced secretRef in a TrustPolicy", false, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k", Namespace: "other"}}
		}, "must not name one"},
		{"cluster secretRef without namespace", true, func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k"}}
		}, "must name their namespace"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := good()
			tc.mut(&spec)
			name := "p" + strings.Repeat("x", i)
			var obj client.Object = &chartproofv1.TrustPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
			if tc.cluster {
				obj = &chartproofv1.ClusterTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name}, Spec: spec}
			}
			err := k8s.Create(context.Background(), obj)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("control refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want refused with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("refused with %v, want a message containing %q", err, tc.want)
			}
		})
	}
}
