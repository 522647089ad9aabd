package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/policy"
)

// The tenancy rule: its metric label and the path it is served at.
const (
	RuleTenancy = "tenancy"
	TenancyPath = "/validate-tenancy"
)

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Tenancy refuses, when they are applied, a VerifiedHelmRelease or a
// TrustPolicy that breaks the tenancy rules the controller would otherwise
// report only later:
//   - a release naming another namespace's TrustPolicy
//     (CrossNamespaceReference);
//   - a release naming no ServiceAccount where the manager has no default
//     (ServiceAccountRequired);
//   - a release whose ServiceAccount may not create Secrets (Helm's
//     records) where its records go (TargetNamespaceForbidden), asked of
//     the API server (a SubjectAccessReview: the only request a decision
//     makes; everything else is read from the manager's cache);
//   - a TrustPolicy in Audit mode where a mandatory ClusterTrustPolicy
//     binds (WeakerThanMandatory).
type Tenancy struct {
	// ServiceAccountFor is the ServiceAccount a release naming named acts
	// as ("" for the manager's own identity), or an error wrapping
	// identity.ErrNoServiceAccount (identity.Factory.ServiceAccountFor).
	ServiceAccountFor func(named string) (string, error)
	// Reviews creates SubjectAccessReviews.
	Reviews client.Client
	// MandatoryFor names the ClusterTrustPolicies that bind a namespace.
	MandatoryFor func(ctx context.Context, namespace string) ([]string, error)
	Metrics      *metrics.Admission
}

// Handle decides one admission request.
func (g *Tenancy) Handle(ctx context.Context, req admission.Request) admission.Response {
	reason, msg, allowed := g.decide(ctx, req)
	return respond(g.Metrics, RuleTenancy, reason, msg, allowed)
}

func (g *Tenancy) decide(ctx context.Context, req admission.Request) (reason, msg string, allowed bool) {
	what := describe(req)
	// What the rules judge is the spec. An update that leaves it as it was
	// (a finalizer removed from a release being deleted, a label, an
	// annotation) is not judged again: its account or the rights it had may
	// be gone by then, as when its namespace is torn down.
	if req.Operation == admissionv1.Update && sameSpec(req) {
		return chartproofv1.ReasonTenancyChecked, what + ": its spec is unchanged", true
	}
	switch req.Kind.Kind {
	case "VerifiedHelmRelease":
		var vhr chartproofv1.VerifiedHelmRelease
		if err := json.Unmarshal(req.Object.Raw, &vhr); err != nil {
			return chartproofv1.ReasonInvalidSpec, fmt.Sprintf("%s: %v", what, err), false
		}
		return g.release(ctx, what, req.Namespace, &vhr)
	case "TrustPolicy":
		var tp chartproofv1.TrustPolicy
		if err := json.Unmarshal(req.Object.Raw, &tp); err != nil {
			return chartproofv1.ReasonInvalidSpec, fmt.Sprintf("%s: %v", what, err), false
		}
		if tp.Spec.Mode != chartproofv1.ModeAudit {
			return chartproofv1.ReasonTenancyChecked, what, true
		}
		mandatory, err := g.MandatoryFor(ctx, req.Namespace)
		if err != nil {
			return chartproofv1.ReasonWeakerThanMandatory, fmt.Sprintf("%s: finding the mandatory ClusterTrustPolicies of namespace %s: %v", what, req.Namespace, err), false
		}
		if len(mandatory) > 0 {
			return chartproofv1.ReasonWeakerThanMandatory, fmt.Sprintf("%s is in Audit mode, but namespace %s is bound by the mandatory ClusterTrustPolicy %s, which every release there must satisfy in Enforce mode",
				what, req.Namespace, strings.Join(mandatory, ", ")), false
		}
		return chartproofv1.ReasonTenancyChecked, what, true
	}
	return chartproofv1.ReasonNotGuarded, what + " is not a kind this rule checks", true
}

func (g *Tenancy) release(ctx context.Context, what, namespace string, vhr *chartproofv1.VerifiedHelmRelease) (reason, msg string, allowed bool) {
	if err := policy.CrossNamespace(vhr.Spec.TrustPolicyRef, namespace); err != nil {
		return chartproofv1.ReasonCrossNamespaceReference, fmt.Sprintf("%s: %v", what, err), false
	}
	sa, err := g.ServiceAccountFor(vhr.Spec.ServiceAccountName)
	switch {
	case errors.Is(err, identity.ErrNoServiceAccount):
		return chartproofv1.ReasonServiceAccountRequired, fmt.Sprintf("%s: %v", what, err), false
	case err != nil:
		return chartproofv1.ReasonServiceAccountRequired, fmt.Sprintf("%s: %v", what, err), false
	case sa == "":
		// The manager's own identity (--unsafe-releases-act-as-manager).
		return chartproofv1.ReasonTenancyChecked, what + ": acts as the manager", true
	}
	storage := firstOf(vhr.Spec.StorageNamespace, vhr.Spec.TargetNamespace, namespace)
	user := identity.Username(namespace, sa)
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: storage, Verb: "create", Resource: "secrets",
		},
	}}
	if err := g.Reviews.Create(ctx, review); err != nil {
		return chartproofv1.ReasonTargetNamespaceForbidden, fmt.Sprintf("%s: asking whether %s may create Secrets in %s: %v", what, user, storage, err), false
	}
	if !review.Status.Allowed {
		return chartproofv1.ReasonTargetNamespaceForbidden, fmt.Sprintf("%s acts as %s, which may not create Secrets (Helm's release records) in namespace %s: it could install nothing there",
			what, user, storage), false
	}
	return chartproofv1.ReasonTenancyChecked, what, true
}

// sameSpec reports whether an update leaves the object's spec as it was
// (false when either cannot be read: then the rules judge it).
func sameSpec(req admission.Request) bool {
	var before, after struct {
		Spec map[string]any `json:"spec"`
	}
	if json.Unmarshal(req.OldObject.Raw, &before) != nil || json.Unmarshal(req.Object.Raw, &after) != nil || before.Spec == nil {
		return false
	}
	return reflect.DeepEqual(before.Spec, after.Spec)
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// Webhook returns the handler served at TenancyPath, panics recovered
// into a denial.
func (g *Tenancy) Webhook() *admission.Webhook {
	return (&admission.Webhook{Handler: g}).WithRecoverPanic(true)
}
