// Package v1alpha1 holds the chartproof API types of the delivery.chartproof.dev
// group: VerifiedHelmRelease, TrustPolicy and ClusterTrustPolicy, their
// condition types, and the stable reason codes every verdict uses.
//
// +kubebuilder:object:generate=true
// +groupName=delivery.chartproof.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "delivery.chartproof.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group and version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
