package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/policy"
)

// ActorOf returns the release whose UID an owner label holds
// (chartproofv1.LabelOwner) and the user chartproof acts as for it: its
// ServiceAccount's name (identity.Username), or "" for the manager's own
// identity. It reads the manager's cache: no API request, so the admission
// webhook (internal/admission) decides from memory. found is false when no
// release has that UID, or it names no account that it may act as.
func (r *VerifiedHelmReleaseReconciler) ActorOf(ctx context.Context, ownerUID string) (release types.NamespacedName, user string, found bool, err error) {
	// Read only: the cache's object is used without a copy (this runs
	// while the API server waits on the webhook).
	var list chartproofv1.VerifiedHelmReleaseList
	if err := r.List(ctx, &list, client.MatchingFields{uidIndex: ownerUID}, client.UnsafeDisableDeepCopy); err != nil {
		return types.NamespacedName{}, "", false, err
	}
	if len(list.Items) != 1 {
		return types.NamespacedName{}, "", false, nil
	}
	vhr := &list.Items[0]
	release = types.NamespacedName{Namespace: vhr.Namespace, Name: vhr.Name}
	sa, err := r.Identities.ServiceAccountFor(vhr.Spec.ServiceAccountName)
	switch {
	case errors.Is(err, identity.ErrNoServiceAccount):
		return release, "", false, nil
	case err != nil:
		return release, "", false, err
	case sa == "":
		return release, "", true, nil
	}
	return release, identity.Username(vhr.Namespace, sa), true, nil
}

// MandatoryFor returns the names of the ClusterTrustPolicies that bind
// namespace (bindingPolicies): every release there must satisfy them, in
// Enforce mode.
func (r *VerifiedHelmReleaseReconciler) MandatoryFor(ctx context.Context, namespace string) ([]string, error) {
	binding, err := r.bindingPolicies(ctx, namespace)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(binding))
	for i, ctp := range binding {
		names[i] = ctp.Name
	}
	return names, nil
}

// bindingPolicies returns the ClusterTrustPolicies whose namespaceSelector
// selects namespace (policy.Binds), from the manager's cache: what the
// controller judges a release by besides its own policy, and what the
// admission webhook refuses an Audit policy under. A selector that does
// not parse, or a namespace that cannot be read, is an error: deny by
// default.
func (r *VerifiedHelmReleaseReconciler) bindingPolicies(ctx context.Context, namespace string) ([]chartproofv1.ClusterTrustPolicy, error) {
	var ctps chartproofv1.ClusterTrustPolicyList
	if err := r.List(ctx, &ctps); err != nil {
		return nil, fmt.Errorf("listing ClusterTrustPolicies: %w", err)
	}
	var ns *corev1.Namespace
	var out []chartproofv1.ClusterTrustPolicy
	for _, ctp := range ctps.Items {
		if ctp.Spec.NamespaceSelector == nil {
			continue
		}
		if ns == nil {
			ns = &corev1.Namespace{}
			if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
				return nil, fmt.Errorf("reading namespace %s, which mandatory ClusterTrustPolicies select on: %w", namespace, err)
			}
		}
		binds, err := policy.Binds(ctp.Spec, ns.Labels)
		if err != nil {
			return nil, fmt.Errorf("mandatory ClusterTrustPolicy %s: %w", ctp.Name, err)
		}
		if binds {
			out = append(out, ctp)
		}
	}
	return out, nil
}
