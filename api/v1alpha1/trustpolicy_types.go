package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says what happens to a chart that fails verification.
// +kubebuilder:validation:Enum=Enforce;Audit
type Mode string

const (
	// ModeEnforce installs nothing that fails verification. The default.
	ModeEnforce Mode = "Enforce"
	// ModeAudit installs the chart and reports every failure in status,
	// events and metrics. A rollout aid; never silent.
	ModeAudit Mode = "Audit"
)

// TrustPolicySpec says who may sign which charts. TrustPolicy and
// ClusterTrustPolicy share it.
// +kubebuilder:validation:XValidation:rule="self.threshold <= size(self.authorities)",message="threshold cannot exceed the number of authorities"
type TrustPolicySpec struct {
	// Repositories are globs over the full chart repository
	// `host[:port]/path/name` (no `oci://`, no tag). `*` matches within one
	// path segment, `**` matches across segments. A chart whose repository
	// matches none of them is refused with NoPolicyMatch.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*][a-z0-9.:*-]*(/[a-z0-9*._-]+)+$`
	// +listType=set
	Repositories []string `json:"repositories"`

	// Authorities are the signers this policy trusts. Each counts at most
	// once towards the threshold, however many signatures it made.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Authorities []Authority `json:"authorities"`

	// Threshold is how many distinct authorities must have signed the chart.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +optional
	Threshold int `json:"threshold,omitempty"`

	// Mode is Enforce (the default: nothing that fails verification is
	// installed) or Audit (installed, and every failure reported).
	// +kubebuilder:default=Enforce
	// +optional
	Mode Mode `json:"mode,omitempty"`
}

// Authority is one trusted signer. Exactly one kind of authority is set;
// `key` is the only kind for now (keyless identities, X.509 chains and
// attestation requirements are added as further optional fields).
// +kubebuilder:validation:XValidation:rule="has(self.key)",message="an authority needs exactly one of: key"
type Authority struct {
	// Name identifies the authority in status, events and metrics.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Key trusts signatures made with one public key.
	// +optional
	Key *KeyAuthority `json:"key,omitempty"`
}

// KeyAuthority is a public key: ECDSA P-256 or P-384, Ed25519, or RSA of at
// least 2048 bits, PEM-encoded (PKIX "PUBLIC KEY"), given inline or in a
// Secret. Exactly one of publicKey and secretRef is set.
// +kubebuilder:validation:XValidation:rule="has(self.publicKey) != has(self.secretRef)",message="set exactly one of publicKey and secretRef"
type KeyAuthority struct {
	// PublicKey is the PEM-encoded public key.
	// +kubebuilder:validation:MaxLength=16384
	// +optional
	PublicKey string `json:"publicKey,omitempty"`

	// SecretRef names a Secret key holding the PEM-encoded public key.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// SecretKeyReference names one key of a Secret. From a TrustPolicy the
// Secret is in the policy's namespace and namespace must be left out; from a
// ClusterTrustPolicy namespace is required.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the Secret; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the Secret's data. Defaults to "cosign.pub".
	// +kubebuilder:default="cosign.pub"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// TrustPolicyStatus reports whether the policy could be loaded.
type TrustPolicyStatus struct {
	// ObservedGeneration is the generation last looked at.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready says whether the policy and its keys load.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TrustPolicy says who may sign which charts, for VerifiedHelmReleases in its
// namespace. Secret references resolve in the same namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tp
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Threshold",type=integer,JSONPath=`.spec.threshold`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.secretRef) || !has(a.key.secretRef.__namespace__) || size(a.key.secretRef.__namespace__) == 0)",message="a TrustPolicy's Secret references are in its own namespace and must not name one"
type TrustPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TrustPolicySpec   `json:"spec"`
	Status TrustPolicyStatus `json:"status,omitempty"`
}

// TrustPolicyList is a list of TrustPolicy.
// +kubebuilder:object:root=true
type TrustPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrustPolicy `json:"items"`
}

// ClusterTrustPolicy is a TrustPolicy any namespace's VerifiedHelmRelease may
// name. Its Secret references must name their namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ctp
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Threshold",type=integer,JSONPath=`.spec.threshold`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.secretRef) || (has(a.key.secretRef.__namespace__) && size(a.key.secretRef.__namespace__) > 0))",message="a ClusterTrustPolicy's Secret references must name their namespace"
type ClusterTrustPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TrustPolicySpec   `json:"spec"`
	Status TrustPolicyStatus `json:"status,omitempty"`
}

// ClusterTrustPolicyList is a list of ClusterTrustPolicy.
// +kubebuilder:object:root=true
type ClusterTrustPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterTrustPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TrustPolicy{}, &TrustPolicyList{}, &ClusterTrustPolicy{}, &ClusterTrustPolicyList{})
}
