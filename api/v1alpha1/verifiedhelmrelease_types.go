package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VerifiedHelmReleaseSpec says which chart to install, under which trust
// policy, and how.
type VerifiedHelmReleaseSpec struct {
	// Chart is the OCI chart to verify and install.
	Chart ChartSource `json:"chart"`

	// TrustPolicyRef names the policy the chart must satisfy.
	TrustPolicyRef TrustPolicyReference `json:"trustPolicyRef"`

	// Values are Helm values, merged over those from ValuesFrom.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Values *apiextensionsv1.JSON `json:"values,omitempty"`

	// ValuesFrom are keys of ConfigMaps or Secrets in the release's namespace
	// holding Helm values (YAML), merged in order; later ones win.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ValuesFrom []ValuesReference `json:"valuesFrom,omitempty"`

	// TargetNamespace is where the chart's objects and the Helm release
	// record go. Defaults to the namespace of this object.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`

	// StorageNamespace is where the Helm release records (Secrets) go, when
	// not in the target namespace: the release's ServiceAccount writes them
	// there. A change uninstalls the release of the old storage before the
	// new one is installed, as a change of targetNamespace does.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`

	// ReleaseName is the Helm release name. Defaults to the name of this
	// object.
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// ServiceAccountName is the ServiceAccount, in this object's namespace,
	// that every Helm action of the release runs as: install, upgrade,
	// recovery, uninstall, hooks, `lookup` at render time, reading the
	// release records, the valuesFrom ConfigMaps and Secrets and the
	// chart's secretRef and certSecretRef. The release
	// can do only what that account may. Empty means the manager's
	// --default-service-account; with neither, nothing is installed
	// (ServiceAccountRequired).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Adopt lets this object take over a Helm release of the same name in
	// the target namespace that it did not install (installed by hand or by
	// another tool): it is upgraded with the verified chart and owned from
	// then on. A release another existing VerifiedHelmRelease owns is never
	// adopted. Without it, such a release is refused (ReleaseNotOwned) and
	// left untouched.
	// +optional
	Adopt bool `json:"adopt,omitempty"`

	// Interval is how often the installed chart is verified again, and the
	// version resolved again.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Interval metav1.Duration `json:"interval,omitempty"`

	// Suspend stops reconciliation: nothing is verified, installed or
	// changed while it is true.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// DriftDetection says what happens when what the release deployed is
	// changed in the cluster: a field edited or added by another writer, an
	// object deleted. By default drift is corrected.
	// +optional
	DriftDetection *DriftDetection `json:"driftDetection,omitempty"`

	// AllowDowngrade lets the release move to a chart version older than
	// the newest it verified and installed (status.newest). Off by
	// default: a registry re-pointing a tag or a range to an older signed
	// chart, or a spec naming one, is refused with DowngradeRefused and
	// the installed release stays (THREATS FRS-01). While it is true, the
	// chart installed becomes status.newest whatever its version: set it
	// to roll back on purpose, then unset it.
	// +optional
	AllowDowngrade bool `json:"allowDowngrade,omitempty"`

	// OnVerificationFailure says what happens to the installed release when
	// its chart stops verifying (a revoked signer or certificate, a trust
	// change, signatures aged past the policy's maxSignatureAge): Hold (the
	// default) keeps it running, blocks every upgrade and alerts
	// (Verified=False, an event, chartproof_installed_unverified_releases);
	// Rollback upgrades it to the newest earlier chart this release
	// installed (status.history) whose digest still verifies, fetched and
	// rendered again from that digest with the current values, and holds
	// when none does; Uninstall uninstalls it. Whichever, nothing that does
	// not verify is installed afterwards. Nothing is done in Audit mode, or
	// while the verification is inconclusive (an outage).
	// +kubebuilder:validation:Enum=Hold;Rollback;Uninstall
	// +kubebuilder:default=Hold
	// +optional
	OnVerificationFailure VerificationFailureAction `json:"onVerificationFailure,omitempty"`

	// Timeout bounds each Helm action (its hooks included) and the wait,
	// after an install or upgrade, for what it deployed to become healthy
	// (the Healthy condition). Defaults to 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// MaxHistory is how many Helm revisions (records) of the release an
	// upgrade keeps; older ones are deleted. Default 10. The Rollback
	// remediation needs the record of status.lastHealthy: keep more than
	// the upgrade's retries.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxHistory *int32 `json:"maxHistory,omitempty"`

	// Install configures the Helm install of the release.
	// +optional
	Install *Install `json:"install,omitempty"`

	// Upgrade configures the Helm upgrades of the release.
	// +optional
	Upgrade *Upgrade `json:"upgrade,omitempty"`

	// Test runs the chart's Helm tests after an install or upgrade.
	// +optional
	Test *Test `json:"test,omitempty"`

	// DependsOn names VerifiedHelmReleases of this namespace that must be
	// Ready (for their current generation) before this release is
	// installed or upgraded: until they are, it is verified and reported
	// as usual, and its Helm action waits (DependencyNotReady).
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	DependsOn []LocalObjectReference `json:"dependsOn,omitempty"`

	// HealthCheckExprs judge the health of kinds kstatus does not know
	// (custom resources without standard conditions) with CEL, as Flux's
	// healthCheckExprs: for each object of the kind, inProgress, then
	// failed, then current is evaluated; the first true decides, and none
	// true (or an expression that cannot be evaluated) is in progress.
	// The expressions see the object's apiVersion, kind, metadata, spec and
	// status (status.phase, not self.status.phase).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	HealthCheckExprs []HealthCheckExpr `json:"healthCheckExprs,omitempty"`

	// PostRenderers change what the chart rendered, in order, before
	// chartproof stamps it and Helm applies it: what drift detection and
	// health checks compare with is their result. Helm does not pass hooks
	// or crds/ through them.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	PostRenderers []PostRenderer `json:"postRenderers,omitempty"`
}

// HealthCheckExpr is how the objects of one kind are judged healthy.
type HealthCheckExpr struct {
	// APIVersion and Kind of the objects it judges.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// Current is true when the object is healthy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Current string `json:"current"`

	// InProgress, evaluated first, is true while the object is becoming
	// healthy.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	InProgress string `json:"inProgress,omitempty"`

	// Failed, evaluated next, is true when the object failed.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Failed string `json:"failed,omitempty"`
}

// PostRenderer is one step that changes what a chart rendered.
type PostRenderer struct {
	// Kustomize patches the rendered objects and changes their images, as
	// kustomize does (sigs.k8s.io/kustomize/api; no plugins, nothing read
	// but what the chart rendered).
	Kustomize KustomizePostRenderer `json:"kustomize"`
}

// KustomizePostRenderer is a kustomization over what a chart rendered.
type KustomizePostRenderer struct {
	// Patches are strategic merge or JSON 6902 patches, each applied to
	// the objects its target selects (or, without a target, to the one
	// object a strategic merge patch names).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Patches []KustomizePatch `json:"patches,omitempty"`

	// Images change the name, tag or digest of container images.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Images []KustomizeImage `json:"images,omitempty"`
}

// KustomizePatch is a kustomize patch and the objects it applies to.
type KustomizePatch struct {
	// Patch is a strategic merge patch, or a JSON 6902 patch, in YAML or
	// JSON.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Patch string `json:"patch"`

	// Target selects the objects to patch.
	// +optional
	Target *KustomizeSelector `json:"target,omitempty"`
}

// KustomizeSelector selects objects as a kustomize patch target does. Name
// and namespace are regular expressions there.
type KustomizeSelector struct {
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Version string `json:"version,omitempty"`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Kind string `json:"kind,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	AnnotationSelector string `json:"annotationSelector,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LabelSelector string `json:"labelSelector,omitempty"`
}

// KustomizeImage changes the images named Name.
type KustomizeImage struct {
	// Name is the image name the chart uses, without tag or digest.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Name string `json:"name"`
	// NewName replaces the name.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	NewName string `json:"newName,omitempty"`
	// NewTag replaces the tag.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	NewTag string `json:"newTag,omitempty"`
	// Digest replaces the tag with a digest.
	// +kubebuilder:validation:Pattern=`^sha256:[a-f0-9]{64}$`
	// +optional
	Digest string `json:"digest,omitempty"`
}

// Test configures the Helm tests of a release (helm test).
type Test struct {
	// Enable runs the chart's test hooks once what an install or upgrade
	// deployed is healthy, as the release's ServiceAccount, within
	// spec.timeout. The hooks run are those of the Helm record chartproof
	// wrote, checked against its digest first. Off by default.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// IgnoreFailures reports failed tests (TestSuccess=False) without
	// making the release not Ready or counting them as a failure of the
	// install or upgrade. Off by default: a failed test is remediated as a
	// failed action is.
	// +optional
	IgnoreFailures bool `json:"ignoreFailures,omitempty"`
}

// Install configures how a release is installed.
type Install struct {
	// DisableWait makes the release Ready once Helm has sent its objects,
	// without waiting for them to become healthy (kstatus Current). Off by
	// default: Ready means what the release deployed runs.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// CreateNamespace creates the target namespace when it does not exist,
	// as the release's ServiceAccount (which then needs the right to
	// create namespaces; the manager never does it with its own).
	// +optional
	CreateNamespace bool `json:"createNamespace,omitempty"`

	// DisableHooks installs without running the chart's install hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// CRDs is what an install does with the CustomResourceDefinitions in
	// the chart's crds/ directories (those of its enabled dependencies
	// included): Create (default) creates those that do not exist and
	// leaves existing ones alone; CreateReplace also replaces existing ones
	// with the chart's; Skip leaves them all. They are applied before the
	// chart's templates are rendered, as the release's ServiceAccount
	// (which needs the rights on customresourcedefinitions), stamped like
	// the chart's other objects, and never deleted by chartproof.
	// +kubebuilder:validation:Enum=Skip;Create;CreateReplace
	// +optional
	CRDs CRDsPolicy `json:"crds,omitempty"`

	// Remediation says how often a failed install is tried again and what
	// is done after the last try. By default: 3 retries, then Hold.
	// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || self.strategy != 'Rollback'",message="an install has nothing to roll back to: Hold or Uninstall"
	// +optional
	Remediation *Remediation `json:"remediation,omitempty"`
}

// Upgrade configures how a release is upgraded.
type Upgrade struct {
	// DisableWait makes the release Ready once Helm has sent the upgraded
	// objects, without waiting for them to become healthy. Off by default.
	// +optional
	DisableWait bool `json:"disableWait,omitempty"`

	// DisableHooks upgrades without running the chart's upgrade hooks.
	// +optional
	DisableHooks bool `json:"disableHooks,omitempty"`

	// Force upgrades with Helm's replacement strategy (helm upgrade
	// --force): each object the chart sets is replaced whole (PUT) rather
	// than patched, so what other writers added to it is gone. Off by
	// default.
	// +optional
	Force bool `json:"force,omitempty"`

	// CRDs is what an upgrade (a remediation's or onVerificationFailure's
	// rollback included) does with the chart's CustomResourceDefinitions:
	// Skip (default, as Helm does) leaves them; Create creates those that
	// do not exist; CreateReplace also replaces existing ones with the
	// chart's, and makes them part of drift detection. See install.crds.
	// +kubebuilder:validation:Enum=Skip;Create;CreateReplace
	// +optional
	CRDs CRDsPolicy `json:"crds,omitempty"`

	// Remediation says how often a failed upgrade is tried again and what
	// is done after the last try. By default: 3 retries, then Rollback.
	// +optional
	Remediation *Remediation `json:"remediation,omitempty"`
}

// CRDsPolicy is what an install or upgrade does with the
// CustomResourceDefinitions a chart holds in its crds/ directories, as Flux
// names it.
type CRDsPolicy string

// CRD policies.
const (
	CRDsSkip          CRDsPolicy = "Skip"
	CRDsCreate        CRDsPolicy = "Create"
	CRDsCreateReplace CRDsPolicy = "CreateReplace"
)

// Remediation of a failed install or upgrade. A failure is a Helm action
// that failed, or what it deployed not healthy within spec.timeout
// (HealthCheckFailed). Each failure of the same chart digest and values at
// the same generation counts (status.lastAttempt.failures); the action is
// tried again 5 s after the first failure, twice as long after each next
// one (at most the interval), until Retries; after the next failure the
// Strategy is applied once and nothing more is tried (Ready=False and
// Stalled, RetriesExhausted) until the spec changes.
type Remediation struct {
	// Retries is how many times a failed action is tried again. Default 3.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	// +optional
	Retries *int32 `json:"retries,omitempty"`

	// Strategy is what is done after the last retry failed: Hold leaves
	// the release as the failure left it; Rollback (upgrades only)
	// installs again the last revision that was healthy
	// (status.lastHealthy), its chart verified again by digest and
	// rendered from that digest with that revision's values; Uninstall
	// uninstalls the release. Default: Hold for an install, Rollback for
	// an upgrade.
	// +kubebuilder:validation:Enum=Hold;Rollback;Uninstall
	// +optional
	Strategy RemediationStrategy `json:"strategy,omitempty"`
}

// RemediationStrategy is what is done after the last retry of a failed
// action failed.
type RemediationStrategy string

// Remediation strategies.
const (
	RemediationHold      RemediationStrategy = "Hold"
	RemediationRollback  RemediationStrategy = "Rollback"
	RemediationUninstall RemediationStrategy = "Uninstall"
)

// Attempt is the install or upgrade chartproof last tried and what came of
// it, while it has not succeeded.
type Attempt struct {
	// Digest and ConfigDigest are the chart and values tried, Generation
	// the spec's generation: a change of any of them starts afresh.
	Digest       string `json:"digest"`
	ConfigDigest string `json:"configDigest,omitempty"`
	Generation   int64  `json:"generation"`
	// Install is true for an install, false for an upgrade.
	// +optional
	Install bool `json:"install,omitempty"`
	// Failures counts the failed tries.
	Failures int32 `json:"failures"`
	// FailedAt is when the last one failed.
	// +optional
	FailedAt *metav1.Time `json:"failedAt,omitempty"`
	// Remediated is true once the remediation strategy was applied.
	// +optional
	Remediated bool `json:"remediated,omitempty"`
	// RecordRevision and RecordDigest name the Helm record a failed
	// install wrote (its revision, and its digest as
	// InstalledRelease.RecordDigest): the record an uninstall of what
	// that install created may follow. Without them no record decides a
	// deletion.
	// +optional
	RecordRevision int32 `json:"recordRevision,omitempty"`
	// +optional
	RecordDigest string `json:"recordDigest,omitempty"`
}

// Drift detection modes.
const (
	// DriftCorrect reports drift and restores the verified state.
	DriftCorrect = "Correct"
	// DriftWarn reports drift and leaves it.
	DriftWarn = "Warn"
	// DriftDisabled neither looks for drift nor reports it.
	DriftDisabled = "Disabled"
)

// DriftDetection configures how the objects a release deployed are
// compared with what its verified chart renders.
type DriftDetection struct {
	// Mode is Correct (report and restore), Warn (report only) or Disabled.
	// Helm release records someone else rewrote (ReleaseRecordTampered) are
	// drift too: restored by installing the verified chart afresh in
	// Correct and Disabled, reported and left in Warn until the mode or
	// the chart changes.
	// +kubebuilder:validation:Enum=Correct;Warn;Disabled
	// +kubebuilder:default=Correct
	// +optional
	Mode string `json:"mode,omitempty"`

	// Ignore lists fields that other controllers legitimately own (an
	// HPA's replicas, say): they are neither reported nor corrected.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Ignore []DriftIgnoreRule `json:"ignore,omitempty"`
}

// DriftIgnoreRule ignores fields of the objects its target selects.
type DriftIgnoreRule struct {
	// Paths are JSON pointers (RFC 6901) into the object, such as
	// /spec/replicas. A pointer covers everything below it.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern="^(/([^~/]|~[01])*)+$"
	// +listType=atomic
	Paths []string `json:"paths"`

	// Target selects the objects the paths apply to; no target means every
	// object of the release.
	// +optional
	Target *DriftTarget `json:"target,omitempty"`
}

// DriftTarget selects objects of a release. Empty fields match anything.
type DriftTarget struct {
	// Group of the object's API ("" is the core group; "*" or unset any).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group *string `json:"group,omitempty"`
	// Kind of the object, such as Deployment.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the object.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the object.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ChartSource is a chart in an OCI registry.
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider == 'generic' || !has(self.secretRef)",message="provider logs in with a cloud identity: it cannot be set with secretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider == 'generic' || !has(self.insecure) || !self.insecure",message="provider sends a cloud token: it cannot be set with insecure (plain HTTP)"
type ChartSource struct {
	// URL is the chart repository: oci://host[:port]/path/name.
	// +kubebuilder:validation:Pattern=`^oci://[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$`
	// +kubebuilder:validation:MaxLength=512
	URL string `json:"url"`

	// Version is a tag (1.2.3), a semver range (>=1.0.0 <2.0.0, ~1.2, 1.x),
	// or a digest (sha256:<64 hex>). A range takes its highest matching tag.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Version string `json:"version"`

	// Insecure allows plain HTTP to the registry. An explicit opt-in; there
	// is never a fallback from HTTPS.
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// CertSecretRef names a Secret in the release's namespace whose `ca.crt`
	// holds the CA bundle for the registry's TLS certificate.
	// +optional
	CertSecretRef *LocalObjectReference `json:"certSecretRef,omitempty"`

	// SecretRef names a kubernetes.io/dockerconfigjson Secret in the
	// release's namespace with the registry credentials.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Provider is how chartproof logs in to the chart's registry: generic
	// (the default: anonymous, or secretRef), or aws (ECR), azure (ACR) or
	// gcp (Artifact Registry, GCR) with the manager's own cloud identity
	// (workload identity), as Flux's OCIRepository does. A cloud provider
	// is used only when the manager runs with
	// --allow-controller-cloud-identity, since any release could then read
	// what that identity may; its credentials go to the chart's registry
	// host only, which must be one of the provider's.
	// +kubebuilder:validation:Enum=generic;aws;azure;gcp
	// +kubebuilder:default=generic
	// +optional
	Provider string `json:"provider,omitempty"`

	// SignatureRepository is where the chart's cosign signatures are
	// stored when they are not beside it: oci://host[:port]/path, as
	// cosign's COSIGN_REPOSITORY names it when signing. Both cosign layouts
	// are read there (the sha256-<hex>.sig tag and referrers of the chart's
	// digest); each signature must still name the chart's digest. Notation
	// signatures and Helm provenance are read from the chart's repository.
	// The policy must allow it (spec.signatureRepositories), or the release
	// is refused with SignatureRepositoryNotAllowed. The credentials of
	// SecretRef are matched by host: those of the chart's registry are
	// never sent to another host.
	// +kubebuilder:validation:Pattern=`^oci://[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$`
	// +kubebuilder:validation:MaxLength=512
	// +optional
	SignatureRepository string `json:"signatureRepository,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TrustPolicyReference names a TrustPolicy in the release's namespace or a
// ClusterTrustPolicy.
// +kubebuilder:validation:XValidation:rule="!has(self.namespace) || self.kind == 'TrustPolicy'",message="a ClusterTrustPolicy has no namespace"
type TrustPolicyReference struct {
	// Kind is TrustPolicy or ClusterTrustPolicy.
	// +kubebuilder:validation:Enum=TrustPolicy;ClusterTrustPolicy
	// +kubebuilder:default=TrustPolicy
	// +optional
	Kind string `json:"kind,omitempty"`

	// Name of the policy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of a TrustPolicy: empty, or the release's own. A release
	// uses only its own namespace's TrustPolicies or a ClusterTrustPolicy:
	// naming another namespace is refused (CrossNamespaceReference) by the
	// admission webhook when the release is applied, and by the controller.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ValuesReference is one key of a ConfigMap or Secret holding Helm values.
type ValuesReference struct {
	// Kind is ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`

	// Name of the object, in the release's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the object's data. Defaults to values.yaml.
	// +kubebuilder:default="values.yaml"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`

	// Optional tolerates a missing object or key.
	// +optional
	Optional bool `json:"optional,omitempty"`

	// TargetPath sets the key's whole content as one value at this path
	// (Helm's --set path syntax: a.b, a.b[0].c, a\.b for a dot in a key),
	// instead of merging it as a YAML document. An unquoted content is typed
	// as Helm's --set types it (true, false, null, integers), a quoted one
	// ('…' or "…") is the string inside the quotes; any other content is a
	// string, commas and all. Applied in order with the other valuesFrom.
	// +kubebuilder:validation:MaxLength=250
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$`
	// +optional
	TargetPath string `json:"targetPath,omitempty"`
}

// VerifiedHelmReleaseStatus is what the controller last observed and did.
type VerifiedHelmReleaseStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Verified, Released, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ResolvedVersion is the tag the version resolved to, when it was a tag
	// or a range.
	// +optional
	ResolvedVersion string `json:"resolvedVersion,omitempty"`

	// ResolvedDigest is the manifest digest the version resolved to at the
	// last reconcile: the one that was verified.
	// +optional
	ResolvedDigest string `json:"resolvedDigest,omitempty"`

	// ShortDigest is the first 12 hex characters of ResolvedDigest: what
	// the version resolved to, installed or refused (installed.shortDigest
	// is what runs).
	// +optional
	ShortDigest string `json:"shortDigest,omitempty"`

	// LastHandledReconcileAt is the value of the annotation
	// reconcile.fluxcd.io/requestedAt that the last reconcile handled, as
	// Flux's controllers write it: `kubectl annotate --overwrite vhr NAME
	// reconcile.fluxcd.io/requestedAt="$(date +%s)"` asks for a reconcile
	// now, and this field says when it was done.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// Installed describes the release chartproof installed, if any.
	// +optional
	Installed *InstalledRelease `json:"installed,omitempty"`

	// Evidence lists the authorities whose signatures were accepted at the
	// last verification.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Evidence []SignatureEvidence `json:"evidence,omitempty"`

	// Attestations lists the attestations the policies require that held
	// at the last verification (spec.attestations of each policy).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Attestations []AttestationEvidence `json:"attestations,omitempty"`

	// LastVerifiedTime is when the installed or resolved digest was last
	// verified, whatever the outcome.
	// +optional
	LastVerifiedTime *metav1.Time `json:"lastVerifiedTime,omitempty"`

	// Newest is the newest chart the release verified and installed: it
	// does not move to an older version unless spec.allowDowngrade. When
	// that chart, still installed, stops verifying (its signer revoked), it
	// falls back to the highest other version of status.history (none: no
	// floor): what a compromised key pushed ahead does not hold the
	// legitimate versions back (THREATS FRS-03).
	// +optional
	Newest *ChartRecord `json:"newest,omitempty"`

	// History lists the charts this release installed, oldest first, at
	// most ten, each digest once (digest, version, Helm revision, when,
	// verified, by which authorities): where onVerificationFailure:
	// Rollback looks for an earlier chart that still verifies.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	History []ChartRecord `json:"history,omitempty"`

	// LastAttempt is the install or upgrade last tried while it has not
	// succeeded (healthy): its failures, and whether its remediation was
	// applied. Cleared once the release runs it, healthy.
	// +optional
	LastAttempt *Attempt `json:"lastAttempt,omitempty"`

	// LastHealthy is the last revision chartproof installed that was
	// healthy (or not waited for): what an upgrade's Rollback remediation
	// installs again.
	// +optional
	LastHealthy *InstalledRelease `json:"lastHealthy,omitempty"`
}

// VerificationFailureAction is what happens to an installed release whose
// chart stops verifying.
type VerificationFailureAction string

// The actions of spec.onVerificationFailure.
const (
	VerificationFailureHold      VerificationFailureAction = "Hold"
	VerificationFailureRollback  VerificationFailureAction = "Rollback"
	VerificationFailureUninstall VerificationFailureAction = "Uninstall"
)

// MaxHistory bounds status.history.
const MaxHistory = 10

// ChartRecord is a chart version and the digest it was installed from; in
// status.history, also when, as which Helm revision, and on whose
// signatures.
type ChartRecord struct {
	ChartVersion string `json:"chartVersion"`
	Digest       string `json:"digest"`
	// Revision is the Helm revision that installed it (the last one, when
	// the same digest was installed again).
	// +optional
	Revision int `json:"revision,omitempty"`
	// InstalledAt is when chartproof installed it.
	// +optional
	InstalledAt *metav1.Time `json:"installedAt,omitempty"`
	// Verified is whether it passed verification when it was installed:
	// false only for a chart a policy in Audit mode let through.
	// +optional
	Verified *bool `json:"verified,omitempty"`
	// Authorities are the policy authorities whose signatures it was
	// installed on ("policy/authority" for a mandatory ClusterTrustPolicy's).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Authorities []string `json:"authorities,omitempty"`
}

// InstalledRelease is the Helm release chartproof installed.
type InstalledRelease struct {
	// Namespace and Name of the Helm release. A change of targetNamespace
	// or releaseName uninstalls this release before the new one is
	// installed. Empty in status written before chartproof recorded them:
	// the spec's target then.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// StorageNamespace is where its records are; empty: Namespace.
	// +optional
	StorageNamespace string `json:"storageNamespace,omitempty"`
	// Digest is the manifest digest of the installed chart.
	Digest string `json:"digest"`
	// ShortDigest is the first 12 hex characters of Digest (a printer
	// column).
	// +optional
	ShortDigest string `json:"shortDigest,omitempty"`
	// ChartVersion is the version in the installed chart's Chart.yaml.
	ChartVersion string `json:"chartVersion"`
	// Revision is the Helm release revision.
	Revision int `json:"revision"`
	// RecordDigest is the sha256 of the Helm record of Revision as chartproof
	// wrote it (its content: chart, values, manifest, hooks). Before an
	// upgrade or an uninstall uses that record, it must still
	// have this digest (ReleaseRecordTampered otherwise). Empty in status
	// written before chartproof kept it: the revision alone is checked.
	// +optional
	RecordDigest string `json:"recordDigest,omitempty"`
	// ConfigDigest is the sha256 of the values the release was installed
	// with; a change in values upgrades the release.
	// +optional
	ConfigDigest string `json:"configDigest,omitempty"`
	// Verified is false when the release was installed in Audit mode
	// without passing verification.
	Verified bool `json:"verified"`

	// DeployedAt is when chartproof's Helm action wrote this revision:
	// the wait for its objects to become healthy ends spec.timeout later.
	// +optional
	DeployedAt *metav1.Time `json:"deployedAt,omitempty"`

	// Tests is what this revision's Helm tests did (spec.test.enable):
	// Succeeded or Failed; empty until they ran.
	// +optional
	Tests string `json:"tests,omitempty"`
}

// SignatureEvidence is one accepted signature.
type SignatureEvidence struct {
	// Policy is the mandatory ClusterTrustPolicy the authority belongs
	// to; empty for the policy trustPolicyRef names.
	// +optional
	Policy string `json:"policy,omitempty"`
	// Authority is the name of the policy authority that signed.
	Authority string `json:"authority"`
	// KeyID is the sha256 of the signer's DER public key, hex; for a Helm
	// provenance file, the signing key's primary key fingerprint.
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// Layout is where the signature was found: cosign-legacy (the
	// sha256-<hex>.sig tag), sigstore-bundle (an OCI referrer) or
	// helm-provenance (the provenance layer of the chart's manifest).
	Layout string `json:"layout"`
	// Signature is the digest of the manifest holding the signature (of
	// the provenance layer, for a Helm provenance file).
	// +optional
	Signature string `json:"signature,omitempty"`
	// VerifiedAt is when chartproof verified it.
	VerifiedAt metav1.Time `json:"verifiedAt"`
	// Issuer is the OIDC issuer a keyless signer's certificate names.
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// Subject is the identity (Subject Alternative Name) a keyless signer's
	// certificate names: a workflow URI, an email address.
	// +optional
	Subject string `json:"subject,omitempty"`
	// LogIndex is the signature's entry in the transparency log.
	// +optional
	LogIndex *int64 `json:"logIndex,omitempty"`
	// LogID is the transparency log's ID (hex sha256 of its key).
	// +optional
	LogID string `json:"logID,omitempty"`
	// SignedAt is the signing time the log or a timestamp authority vouches
	// for.
	// +optional
	SignedAt *metav1.Time `json:"signedAt,omitempty"`

	// Revocation is set for an x509 authority: the revocation status of the
	// certificate path (OCSP, CRLs): Good, or Unknown when the authority's
	// revocation mode SoftFail counted the signature all the same, with
	// why.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Revocation string `json:"revocation,omitempty"`
}

// AttestationEvidence is one required attestation that held.
type AttestationEvidence struct {
	// Name is the requirement's name in its policy's spec.attestations.
	Name string `json:"name"`
	// PredicateType is the verified statement's predicate type.
	PredicateType string `json:"predicateType"`
	// SignatureEvidence is the attestation's signature: its signer, where
	// it was found (Signature: the manifest holding it), when verified.
	SignatureEvidence `json:",inline"`
}

// VerifiedHelmRelease installs an OCI Helm chart only when its provenance
// verifies under a trust policy, and keeps verifying it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vhr
// The columns say what runs (Installed, Revision: the chart chartproof
// installed) apart from what the version last resolved to (Resolved, in -o
// wide: it may be a digest that was refused), and print the Ready message as
// Flux prints a HelmRelease's.
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Verified",type=string,JSONPath=`.status.conditions[?(@.type=="Verified")].status`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.installed.chartVersion`,description="the chart version that runs"
// +kubebuilder:printcolumn:name="Installed",type=string,JSONPath=`.status.installed.shortDigest`,description="the digest that runs"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.installed.revision`,priority=1
// +kubebuilder:printcolumn:name="Resolved",type=string,JSONPath=`.status.shortDigest`,priority=1,description="what the version last resolved to, installed or refused"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type VerifiedHelmRelease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VerifiedHelmReleaseSpec   `json:"spec"`
	Status VerifiedHelmReleaseStatus `json:"status,omitempty"`
}

// VerifiedHelmReleaseList is a list of VerifiedHelmRelease.
// +kubebuilder:object:root=true
type VerifiedHelmReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VerifiedHelmRelease `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VerifiedHelmRelease{}, &VerifiedHelmReleaseList{})
}
