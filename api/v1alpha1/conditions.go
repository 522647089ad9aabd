package v1alpha1

// Condition types of a VerifiedHelmRelease.
const (
	// ConditionReady is True only when the installed release is the one
	// that was verified under the policy.
	ConditionReady = "Ready"
	// ConditionVerified is True when the resolved digest passed the policy,
	// False when it was refused, Unknown when verification could not be
	// completed (inconclusive).
	ConditionVerified = "Verified"
	// ConditionReleased is True when the Helm release is deployed.
	ConditionReleased = "Released"
	// ConditionReconciling is True while work is in progress (kstatus).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a change of spec or
	// policy (kstatus).
	ConditionStalled = "Stalled"
	// ConditionDrifted is True when what the release deployed differs from
	// what its verified chart renders and the difference stays (Warn mode,
	// a failed correction); False when it matches, or was just corrected.
	ConditionDrifted = "Drifted"
	// ConditionHealthy is True when every object the last install or
	// upgrade deployed is healthy (kstatus Current), Unknown while they
	// are becoming so within spec.timeout, False when one failed or the
	// time is up. Absent when the action was not waited for (disableWait).
	ConditionHealthy = "Healthy"
	// ConditionRemediated is True when the remediation strategy of a failed
	// install or upgrade was applied (a rollback, an uninstall), False when
	// it could not be or the strategy is Hold. Absent otherwise.
	ConditionRemediated = "Remediated"
	// ConditionTestSuccess is True when the Helm tests of the installed
	// revision passed, False when one failed (spec.test.enable). Absent
	// otherwise.
	ConditionTestSuccess = "TestSuccess"
)

// Annotations the post-renderer stamps on every object a release installs.
const (
	// AnnotationRelease is namespace/name of the VerifiedHelmRelease.
	AnnotationRelease = "delivery.chartproof.dev/release"
	// AnnotationChartDigest is the verified manifest digest of the chart.
	AnnotationChartDigest = "delivery.chartproof.dev/chart-digest"
)

// AnnotationReconcileRequest asks for a reconcile now whenever its value
// changes: the annotation Flux's controllers and the flux CLI use, so that
// scripts written for Flux work unchanged. The value handled last is
// status.lastHandledReconcileAt.
const AnnotationReconcileRequest = "reconcile.fluxcd.io/requestedAt"

// LabelOwner is the label on every Helm release record (the Secret Helm
// stores a revision in) a VerifiedHelmRelease wrote, and on every object it
// deployed: the UID of that VerifiedHelmRelease. On objects it only scopes
// the manager's watches; nothing is decided on it. chartproof upgrades, recovers or uninstalls only
// releases whose latest record carries the UID of the object acting.
const LabelOwner = "delivery.chartproof.dev/owner-uid"

// Reason codes. They are condition reasons, CLI and metric labels, and the
// codes of a verdict. Codes are added, never renamed. Each one is described
// in Reasons, from which docs/reasons.md is generated.
const (
	// Success reasons.
	ReasonVerified         = "Verified"
	ReasonInstallSucceeded = "InstallSucceeded"
	ReasonUpgradeSucceeded = "UpgradeSucceeded"
	ReasonReleaseUpToDate  = "ReleaseUpToDate"
	ReasonSuspended        = "Suspended"
	ReasonAuditOnly        = "AuditOnly"
	ReasonPolicyReady      = "PolicyReady"
	// ReasonProgressing: a reconcile of a new generation, or a Helm
	// action, has started (Reconciling=True, so kstatus reads InProgress).
	ReasonProgressing = "Progressing"

	// Policy and configuration.
	ReasonPolicyNotFound = "PolicyNotFound"
	ReasonInvalidPolicy  = "InvalidPolicy"
	ReasonNoPolicyMatch  = "NoPolicyMatch"
	ReasonInvalidSpec    = "InvalidSpec"
	// ReasonTrustedRootUnavailable: a policy's trusted root comes from a TUF
	// repository that could not be read, and nothing read from it verified
	// yet (inconclusive).
	ReasonTrustedRootUnavailable = "TrustedRootUnavailable"
	// ReasonTrustedRootRefused: a policy's trusted root comes from a TUF
	// repository whose metadata did not verify (expired, rolled back, not
	// signed by the root's keys, a target of the wrong length or hash), and
	// no trusted root verified earlier is still valid.
	ReasonTrustedRootRefused = "TrustedRootRefused"
	// ReasonNoClusterPolicy: the manager requires a ClusterTrustPolicy
	// (--require-cluster-policy) and none judges the release.
	ReasonNoClusterPolicy = "NoClusterPolicy"
	// ReasonSignatureRepositoryNotAllowed: the release names a signature
	// repository its policy does not allow.
	ReasonSignatureRepositoryNotAllowed = "SignatureRepositoryNotAllowed"

	// Tenancy: who a release acts as, and which Helm release it may touch.
	ReasonServiceAccountRequired = "ServiceAccountRequired"
	ReasonReleaseNotOwned        = "ReleaseNotOwned"
	ReasonReleaseRecordTampered  = "ReleaseRecordTampered"

	// Signatures and binding.
	ReasonNoSignature     = "NoSignature"
	ReasonUntrustedSigner = "UntrustedSigner"
	ReasonSubjectMismatch = "SubjectMismatch"
	// Attestations (spec.attestations of a policy).
	ReasonAttestationMissing         = "AttestationMissing"
	ReasonAttestationSubjectMismatch = "AttestationSubjectMismatch"
	ReasonPredicateTypeMismatch      = "PredicateTypeMismatch"
	ReasonPredicateRejected          = "PredicateRejected"
	ReasonThresholdNotMet            = "ThresholdNotMet"
	ReasonMalformedSignature         = "MalformedSignature"
	ReasonIdentityMismatch           = "IdentityMismatch"
	ReasonNotLogged                  = "NotLogged"
	ReasonKeyNotValidAtSigningTime   = "KeyNotValidAtSigningTime"
	ReasonSignerRevoked              = "SignerRevoked"
	ReasonDigestDenied               = "DigestDenied"
	// ReasonCertificateRejected: a signature's certificate was issued in
	// an x509 authority's PKI, but its path fails a check.
	ReasonCertificateRejected = "CertificateRejected"
	// ReasonCertificateRevoked: a CRL or OCSP responder says a certificate
	// of a validated path is revoked.
	ReasonCertificateRevoked = "CertificateRevoked"
	// ReasonRevocationUnknown: the revocation status of a certificate of a
	// validated path could not be established (inconclusive).
	ReasonRevocationUnknown = "RevocationUnknown"
	// Freshness (THREATS FRS-01 to FRS-03).
	ReasonSignatureTooOld    = "SignatureTooOld"
	ReasonChartVersionTooOld = "ChartVersionTooOld"
	ReasonDowngradeRefused   = "DowngradeRefused"
	// What onVerificationFailure did to an installed release that stopped
	// verifying.
	ReasonRolledBack            = "RolledBack"
	ReasonRollbackFailed        = "RollbackFailed"
	ReasonUninstalledUnverified = "UninstalledUnverified"
	// ReasonProvenanceMismatch: a Helm provenance file a trusted key
	// signed describes another chart than the one its manifest holds.
	ReasonProvenanceMismatch = "ProvenanceMismatch"

	// Registry and content.
	ReasonRegistryUnavailable  = "RegistryUnavailable"
	ReasonRegistryUnauthorized = "RegistryUnauthorized"
	ReasonVersionNotFound      = "VersionNotFound"
	ReasonDigestMismatch       = "DigestMismatch"
	ReasonInvalidManifest      = "InvalidManifest"
	ReasonInvalidChart         = "InvalidChart"
	ReasonLimitExceeded        = "LimitExceeded"

	// Release.
	ReasonInstallFailed  = "InstallFailed"
	ReasonUpgradeFailed  = "UpgradeFailed"
	ReasonUpgradeBlocked = "UpgradeBlocked"
	// ReasonPermissionsMissing: the preflight found rights the release's
	// ServiceAccount lacks on what the chart rendered.
	ReasonPermissionsMissing = "PermissionsMissing"
	ReasonUninstallFailed    = "UninstallFailed"
	// ReasonAwaitingSignature: the chart the spec resolves to has no
	// signature yet (a CI pipeline's push→sign window): verified again
	// soon, with backoff, for one interval.
	ReasonAwaitingSignature = "AwaitingSignature"
	// ReasonReleaseHeld: the installed chart itself no longer verifies and
	// stays installed (onVerificationFailure Hold, or while a Rollback or
	// Uninstall cannot act).
	ReasonReleaseHeld = "ReleaseHeld"
	// ReasonUninstallSucceeded: the release of an old target was
	// uninstalled after targetNamespace or releaseName changed.
	ReasonUninstallSucceeded = "UninstallSucceeded"

	// Health of what the last install or upgrade deployed.
	ReasonHealthCheckSucceeded = "HealthCheckSucceeded"
	ReasonHealthCheckPending   = "HealthCheckPending"
	ReasonHealthCheckFailed    = "HealthCheckFailed"

	// ReasonDependencyNotReady: a release spec.dependsOn names is not Ready.
	ReasonDependencyNotReady = "DependencyNotReady"

	// Helm tests.
	ReasonTestSucceeded = "TestSucceeded"
	ReasonTestFailed    = "TestFailed"

	// Remediation of a failed install or upgrade.
	ReasonRetriesExhausted  = "RetriesExhausted"
	ReasonRollbackSucceeded = "RollbackSucceeded"

	// Recovery of a release an interrupted Helm action left pending.
	ReasonPendingReleaseRecovered = "PendingReleaseRecovered"
	ReasonPendingRecoveryFailed   = "PendingRecoveryFailed"

	// Drift of what a release deployed.
	ReasonNoDrift          = "NoDrift"
	ReasonDriftDetected    = "DriftDetected"
	ReasonDriftCorrected   = "DriftCorrected"
	ReasonDriftCheckFailed = "DriftCheckFailed"
	ReasonDriftConflict    = "DriftConflict"
)

// Admission reasons: the decisions of the admission webhook
// (internal/admission), in its responses, audit annotations and metrics.
const (
	ReasonOwnedObjectProtected = "OwnedObjectProtected"
	ReasonBreakGlass           = "BreakGlass"
	ReasonChartproofActing     = "ChartproofActing"
	ReasonExemptIdentity       = "ExemptIdentity"
	ReasonUnmanagedHelmRecord  = "UnmanagedHelmRecord"
	ReasonNotGuarded           = "NotGuarded"
	ReasonStatusOnly           = "StatusOnly"
	// Tenancy, refused when a release or policy is applied.
	ReasonCrossNamespaceReference  = "CrossNamespaceReference"
	ReasonTargetNamespaceForbidden = "TargetNamespaceForbidden"
	ReasonWeakerThanMandatory      = "WeakerThanMandatory"
	ReasonTenancyChecked           = "TenancyChecked"
)

// ReasonKind groups reason codes for SREs: a denial is an attack or a
// misconfiguration to look at; an inconclusive outcome is usually an outage.
type ReasonKind string

const (
	ReasonKindSuccess      ReasonKind = "success"
	ReasonKindDenial       ReasonKind = "denial"
	ReasonKindInconclusive ReasonKind = "inconclusive"
	ReasonKindRelease      ReasonKind = "release"
)

// ReasonInfo documents one reason code.
type ReasonInfo struct {
	Code        string
	Kind        ReasonKind
	Description string
}

// Reasons documents every reason code, in the order of docs/reasons.md.
var Reasons = []ReasonInfo{
	{ReasonVerified, ReasonKindSuccess, "The digest passed every check of the policy: enough distinct trusted authorities signed exactly this digest."},
	{ReasonInstallSucceeded, ReasonKindSuccess, "The verified chart was installed."},
	{ReasonUpgradeSucceeded, ReasonKindSuccess, "The release was upgraded to the verified chart or to new values."},
	{ReasonReleaseUpToDate, ReasonKindSuccess, "The installed release is the verified digest with the current values; nothing to do."},
	{ReasonSuspended, ReasonKindSuccess, "spec.suspend is true: nothing is verified, installed or changed."},
	{ReasonAuditOnly, ReasonKindSuccess, "The policy is in Audit mode: the chart failed verification and was installed anyway. Ready is True with this reason (kstatus reads Current: Audit mode must not fail a GitOps health check); the failure is in the Verified condition (False), a Warning event and the metrics."},
	{ReasonProgressing, ReasonKindSuccess, "Work has started: a reconcile of a new generation of the spec, or a Helm install or upgrade. Reconciling is True (kstatus reads InProgress) until it ends; written before the work, so that a waiter never reads an unfinished release as Current."},
	{ReasonPolicyReady, ReasonKindSuccess, "A TrustPolicy or ClusterTrustPolicy compiled: its keys and trusted roots parse, its keys are strong enough, its identity patterns compile, and its Secrets and ConfigMaps exist (the policy's Ready condition)."},
	{ReasonPolicyNotFound, ReasonKindDenial, "The TrustPolicy or ClusterTrustPolicy named by trustPolicyRef does not exist."},
	{ReasonInvalidPolicy, ReasonKindDenial, "The policy cannot be used: a key or trusted root does not parse, a key is too weak, an identity pattern does not compile or constrains nothing, a referenced Secret, ConfigMap or key is missing, or a field is out of range."},
	{ReasonTrustedRootUnavailable, ReasonKindInconclusive, "A policy's trusted root comes from a TUF repository (trustedRoot.tuf) that could not be reached or answered with an error, and nothing read from it before verified: nothing new is installed, what is installed is held, and the policy is compiled again soon. The public-good repository falls back to the trusted root chartproof embeds instead."},
	{ReasonTrustedRootRefused, ReasonKindDenial, "A policy's trusted root comes from a TUF repository (trustedRoot.tuf) whose metadata did not verify: expired, a version lower than one verified before (a rollback), fewer valid signatures than the role's threshold, or a target whose length or hashes differ from the signed ones (THREATS FRS-02, FRS-04). The last trusted root verified is used until its metadata expires; after that, or with none, nothing new is installed and the embedded root is never used in its place."},
	{ReasonNoPolicyMatch, ReasonKindDenial, "The chart's repository matches none of the policy's spec.repositories globs."},
	{ReasonSignatureRepositoryNotAllowed, ReasonKindDenial, "The release names a signature repository (spec.chart.signatureRepository, cosign's COSIGN_REPOSITORY) that the policy's spec.signatureRepositories does not allow; nothing is read there (THREATS REG-09)."},
	{ReasonNoClusterPolicy, ReasonKindDenial, "The manager runs with --require-cluster-policy and no ClusterTrustPolicy judges the release: it names a TrustPolicy, and no ClusterTrustPolicy whose namespaceSelector selects its namespace covers its chart. Nothing is installed until a platform team's policy applies."},
	{ReasonInvalidSpec, ReasonKindDenial, "The VerifiedHelmRelease cannot be acted on: a bad URL or version, or missing values or credentials."},
	{ReasonServiceAccountRequired, ReasonKindDenial, "The release names no spec.serviceAccountName and the manager has no --default-service-account: a release acts only as a ServiceAccount of its namespace, never with the manager's own rights, so nothing is installed."},
	{ReasonReleaseNotOwned, ReasonKindDenial, "A Helm release of that name exists in the target namespace, but its records do not carry this VerifiedHelmRelease's UID (installed by hand, by another tool or by another VerifiedHelmRelease): it is left untouched, neither upgraded nor uninstalled. Set spec.adopt to take over a release no other VerifiedHelmRelease owns."},
	{ReasonReleaseRecordTampered, ReasonKindDenial, "The Helm record of the revision chartproof installed (a Secret of the target namespace) is not the one it wrote: its digest differs from status.installed.recordDigest, or another revision is deployed. Nothing in it is applied or used to decide what to delete: the upgrade, rollback or uninstall that would have read it is not done. An upgrade is replaced by a repair (the release's records are dropped and the verified chart installed afresh); an uninstall uninstalls nothing. In driftDetection mode Warn, records rewritten under an unchanged spec (a manual helm upgrade or rollback, a record edited or deleted) are reported (Released and Ready False, Drifted True with DriftDetected) and left, until the mode is Correct or the chart or values change. Counted in chartproof_release_records_tampered_total."},
	{ReasonNoSignature, ReasonKindDenial, "No signature was found for the digest, in either cosign layout."},
	{ReasonUntrustedSigner, ReasonKindDenial, "Signatures exist, but none verifies under any of the policy's authorities."},
	{ReasonSubjectMismatch, ReasonKindDenial, "A trusted authority's signature verifies, but it names another digest: a signature copied from another artifact."},
	{ReasonAttestationMissing, ReasonKindDenial, "A policy requires an attestation (spec.attestations) of a predicate type, and no attestation of that type was found for the chart's manifest digest, in cosign's `.att` tag or as a Sigstore bundle referrer."},
	{ReasonAttestationSubjectMismatch, ReasonKindDenial, "An attestation of the required type verifies under its authorities, but its in-toto statement names another digest than the chart's manifest digest: an attestation copied from another artifact."},
	{ReasonPredicateTypeMismatch, ReasonKindDenial, "The registry lists an attestation as being of the required predicate type, but its signed statement is of another: the statement decides, and no attestation of the required type was found."},
	{ReasonPredicateRejected, ReasonKindDenial, "An attestation of the required type verifies under its authorities and names the chart, but the requirement's CEL condition is false for it (another builder, source repository or ref), or could not be evaluated; the message names the requirement and its condition."},
	{ReasonThresholdNotMet, ReasonKindDenial, "Fewer distinct trusted authorities signed the digest than the policy's threshold."},
	{ReasonIdentityMismatch, ReasonKindDenial, "A keyless signature verifies under a trusted root of the policy (certificate chain at the signing time, transparency log, timestamps), but its certificate names an issuer, subject or extension none of the authority's identities allows; or a signature verifies under an x509 authority's PKI, but its leaf names none of the authority's subjectAlternativeNames."},
	{ReasonNotLogged, ReasonKindDenial, "A key authority with requireTransparencyLog verifies the signature, but no transparency log of its trusted root records it (no entry, an entry for something else, or an entry whose proof or promise does not verify)."},
	{ReasonSignerRevoked, ReasonKindDenial, "Signatures that would count were made by signers the policy's revocations list (a key ID; a keyless identity, or what it signed at or after its cutoff, judged by the verified signing time), so too few authorities count. The installed release stays and is marked Verified=False; nothing new is installed."},
	{ReasonDigestDenied, ReasonKindDenial, "The chart's digest is in the policy's revocations.digests: it is refused whatever signs it, in Audit mode too."},
	{ReasonCertificateRejected, ReasonKindDenial, "A signature carries a certificate of an x509 authority's PKI whose path fails strict validation (docs/security.md, THREATS PKI-*): the leaf lacks the codeSigning extended key usage or the digitalSignature key usage or is a CA; an issuer is no CA, lacks keyCertSign or exceeds its path length; a key or signature algorithm is weak (SHA-1, RSA under 2048 bits, a curve other than P-256 or P-384); a certificate of the path is not valid at the signing time (or now, without a trusted root); an unknown critical extension or a name constraint chartproof cannot enforce. The message names the certificate, the check and the THREATS row."},
	{ReasonCertificateRevoked, ReasonKindDenial, "A signature verifies under an x509 authority's PKI, but a certificate of its path is revoked: its OCSP responder says so, or the CRL of its distribution point (fetched, or served from the cluster by revocation.crls) lists it, revoked before the signing time. It does not count; an installed release is marked Verified=False and stays, or is rolled back or uninstalled as spec.onVerificationFailure says."},
	{ReasonRevocationUnknown, ReasonKindInconclusive, "A signature verifies under an x509 authority's PKI, but the revocation status of a certificate of its path that names an OCSP responder or a CRL distribution point could not be established (no answer within the timeout, a CRL past its nextUpdate or signed by another issuer, an OCSP answer of unknown). In the authority's revocation mode Enforce (the default) it does not count, nothing new is installed and the verification is retried; in SoftFail it counts and the evidence says its status was unknown."},
	{ReasonSignatureTooOld, ReasonKindDenial, "Signatures that would count are older than the policy's freshness.maxSignatureAge, by their verified signing time (or have none), so too few authorities count: sign the chart again. An installed release whose signatures aged past it is marked Verified=False and stays."},
	{ReasonChartVersionTooOld, ReasonKindDenial, "The chart's version (Chart.yaml, or the tag it resolved through) is below the policy's freshness.minChartVersion, or is not a semantic version: refused whatever signs it, in Audit mode too."},
	{ReasonDowngradeRefused, ReasonKindDenial, "The chart resolved is an older version than the newest this release verified and installed (status.newest): a tag or range re-pointed to an older signed chart, or a spec naming one. Nothing is installed; the installed release stays. Set spec.allowDowngrade to roll back on purpose."},
	{ReasonKeyNotValidAtSigningTime, ReasonKindDenial, "A key authority with validFor verifies the signature, but the signing time its log or timestamp authority vouches for lies outside the key's validity window (a retired or not yet valid key)."},
	{ReasonProvenanceMismatch, ReasonKindDenial, "A Helm provenance file signed by a trusted OpenPGP key describes another chart: its file entry is not `<name>-<version>.tgz` of its Chart.yaml copy, or that copy names another chart or version than the repository or the chart archive's Chart.yaml (THREATS PRV-03, PRV-07). A wrong archive hash is SubjectMismatch."},
	{ReasonMalformedSignature, ReasonKindDenial, "A signature artifact is malformed (bad payload, bad encoding, unsupported layout) and no valid signature remains."},
	{ReasonRegistryUnavailable, ReasonKindInconclusive, "The registry could not be reached or answered with an error; nothing new is installed and the verification is retried."},
	{ReasonRegistryUnauthorized, ReasonKindDenial, "The registry refused the credentials (HTTP 401 or 403): fix chart.secretRef or the Docker config; retrying will not help."},
	{ReasonVersionNotFound, ReasonKindDenial, "No tag matches the version, or the tag or digest does not exist."},
	{ReasonDigestMismatch, ReasonKindDenial, "Bytes read from the registry do not hash to the digest (or size) they were requested by."},
	{ReasonInvalidManifest, ReasonKindDenial, "The manifest is not a Helm chart manifest: wrong media type, an index, or not exactly one chart layer and one Helm config."},
	{ReasonInvalidChart, ReasonKindDenial, "The chart archive is unsafe or invalid: links, path traversal, duplicates, or Helm cannot load it."},
	{ReasonLimitExceeded, ReasonKindDenial, "An untrusted input exceeded its size or count limit."},
	{ReasonInstallFailed, ReasonKindRelease, "The Helm install failed."},
	{ReasonUpgradeFailed, ReasonKindRelease, "The Helm upgrade failed; the previous release stays."},
	{ReasonPermissionsMissing, ReasonKindRelease, "Before an install or upgrade wrote anything, the preflight asked the API server, as the release's ServiceAccount (SelfSubjectAccessReview), for each verb a release needs (get, create, patch, delete) on each object the chart rendered, and some were refused; the message lists them (the first 8, and how many more). Nothing was written: no record, no object (the chart's crds/, applied first, excepted); it is not counted as a failed action. Stalled until the rights are granted; looked at again every 30 s, so granting them is enough. Hooks are not checked: Helm does not pass them through a post-renderer."},
	{ReasonUpgradeBlocked, ReasonKindRelease, "The release is installed, but the chart now resolved (another digest) failed verification: no upgrade, the installed release stays. Ready and Released say so; Released never says ReleaseUpToDate for a blocked upgrade."},
	{ReasonAwaitingSignature, ReasonKindRelease, "The chart the spec resolves to, another digest than the one that runs, has no signature at all yet: the window of a CI pipeline that pushes a chart and signs it moments later. It is verified again soon, with backoff (5 s, then as long as it has waited so far), until one interval after it was first refused; meanwhile Reconciling is True with this reason (kstatus InProgress: the spec is not done), Stalled is absent, and Ready stays True with this reason when what runs is a chart that verifies. Verified is False (NoSignature) and a Warning event says so; nothing unsigned is installed. After the window: the refusal as usual (UpgradeBlocked, Stalled), verified again at the interval. A chart signed by a key the policy does not trust is never awaited. The window starts again when the tag moves to another unsigned digest, or the manager restarts."},
	{ReasonHealthCheckSucceeded, ReasonKindSuccess, "Every object the last install or upgrade deployed is healthy (kstatus Current: a Deployment's replicas updated and available, a Job complete, ...), read as the release's ServiceAccount."},
	{ReasonHealthCheckPending, ReasonKindRelease, "An object the last install or upgrade deployed is not healthy yet; chartproof looks again within seconds until spec.timeout (5m by default) has passed since the action. Ready is Unknown and Reconciling True (kstatus InProgress)."},
	{ReasonHealthCheckFailed, ReasonKindRelease, "An object the last install or upgrade deployed failed (kstatus Failed: a rollout past its progress deadline, a failed Job) or was not healthy within spec.timeout; the message names it. Ready is False and Stalled True (kstatus Failed) until it is healthy at a later reconcile."},
	{ReasonDependencyNotReady, ReasonKindRelease, "A VerifiedHelmRelease that spec.dependsOn names does not exist or is not Ready for its current generation: the chart is verified and reported as usual, and its install or upgrade waits (Ready=False, Reconciling: kstatus InProgress) until it is, looked at again when it turns Ready and every 5 s."},
	{ReasonTestSucceeded, ReasonKindSuccess, "The chart's Helm tests (its test hooks, from the Helm record chartproof wrote, checked against its digest) passed, run as the release's ServiceAccount once what the install or upgrade deployed was healthy (spec.test.enable)."},
	{ReasonTestFailed, ReasonKindRelease, "A Helm test of the installed revision failed or could not run (the message names it); unless spec.test.ignoreFailures, Ready is False and it counts as a failure of the install or upgrade: tried again, then remediated."},
	{ReasonRetriesExhausted, ReasonKindRelease, "An install or upgrade failed (the Helm action, or its health check) more often than its remediation.retries allow (3 by default); its strategy was applied once (Remediated says how) and nothing more is tried until the spec changes. Ready is False and Stalled True (kstatus Failed)."},
	{ReasonRollbackSucceeded, ReasonKindRelease, "After the last retry of an upgrade failed, the last healthy revision (status.lastHealthy) was installed again: its chart verified again by digest under the policy as it is now and rendered from that digest with that revision's values, read from its Helm record after checking the record's digest (Remediated=True)."},
	{ReasonReleaseHeld, ReasonKindRelease, "The installed chart itself no longer verifies (its signer revoked, its digest denied) and stays installed: spec.onVerificationFailure is Hold, or a Rollback or Uninstall could not act (an outage, a policy in Audit mode). Released says so; Ready and Verified are False with the verdict's reason. Nothing new is installed while it does not verify."},
	{ReasonUninstallFailed, ReasonKindRelease, "The Helm uninstall on deletion, or of the release of an old target, failed; the release stays and the uninstall is retried. Also the Remediated=False reason when the Uninstall remediation of a failed install or upgrade failed (not retried: nothing more is tried until the spec changes)."},
	{ReasonRolledBack, ReasonKindRelease, "The installed chart stopped verifying and spec.onVerificationFailure is Rollback: the release was upgraded to the newest earlier chart it installed (status.history) whose digest verifies now, fetched and rendered again from that digest with the current values. Upgrades stay blocked while the chart the spec names does not verify."},
	{ReasonRollbackFailed, ReasonKindRelease, "The installed chart stopped verifying and spec.onVerificationFailure is Rollback, but no earlier chart of status.history verifies now, or its Helm upgrade failed: the release is held as it is (as with Hold) and the rollback is tried again at the next reconcile. Also the Remediated=False reason when the Rollback remediation of a failed upgrade could not act: no earlier revision was healthy, its record is not the one chartproof wrote, its digest does not verify now, or the Helm action failed."},
	{ReasonUninstalledUnverified, ReasonKindRelease, "The installed chart stopped verifying and spec.onVerificationFailure is Uninstall: the release was uninstalled as its ServiceAccount. A chart that verifies is installed again when the spec resolves to one."},
	{ReasonUninstallSucceeded, ReasonKindRelease, "spec.targetNamespace or spec.releaseName changed: the release this object had installed at the old target was uninstalled; the new one is installed next. Also the Remediated=True reason when the Uninstall remediation of a failed install or upgrade uninstalled the release (not installed again until the spec changes)."},
	{ReasonPendingReleaseRecovered, ReasonKindRelease, "An interrupted Helm action (a crash, a lost API server) had left the release pending-install, pending-upgrade, pending-rollback or uninstalling: the unfinished record was marked failed and nothing in it applied or used to decide what to delete; the verified chart is applied at the next reconcile, upgraded from the record chartproof installed (checked first) or installed afresh when none is deployed."},
	{ReasonNoDrift, ReasonKindSuccess, "Every object the release deployed matches what its verified chart renders (fields covered by spec.driftDetection.ignore aside)."},
	{ReasonDriftDetected, ReasonKindRelease, "An object the release deployed was changed in the cluster: a field the chart sets edited or removed, a field another writer added (a container, an env var, a rule), or the object deleted. In Warn mode, or while the installed chart no longer verifies, it is reported (the Drifted condition names the objects, fields and writers, never values) and left; counted once in chartproof_drift_total."},
	{ReasonDriftCorrected, ReasonKindRelease, "Drift was found and the verified state restored: the chart's fields applied again under chartproof's field manager (taking them back from other writers), fields other writers added removed, deleted objects recreated; all as the release's ServiceAccount and with the values of the verified rendering, never with a value read back from the cluster."},
	{ReasonDriftCheckFailed, ReasonKindRelease, "Drift could not be checked or corrected: the ServiceAccount may not read or write an object, a write conflicted, or the API server failed. Checked again at the next event or soon."},
	{ReasonDriftConflict, ReasonKindRelease, "Another writer undid chartproof's correction of the same field again and again (corrected twice within ten minutes, changed a third time): the Drifted condition names the field and the other field manager, and chartproof stops correcting that field, and only it, until the release changes (spec, chart or values) or ten minutes pass. It does not fight another controller forever; find it and give one of you the field (spec.driftDetection.ignore)."},
	{ReasonPendingRecoveryFailed, ReasonKindRelease, "A release left pending by an interrupted Helm action could not be unlocked: its unfinished record could not be marked failed. Nothing was applied; the recovery is retried."},
	{ReasonOwnedObjectProtected, ReasonKindDenial, "Admission refused a change (create, update or delete) to an object a VerifiedHelmRelease deployed, or to its Helm release record (both carry the owner label): it did not come from chartproof acting for that release (the release's ServiceAccount impersonated by the manager, marked with the delivery.chartproof.dev/agent user extra), the manager itself, an exempt system identity, or a break-glass group. Change the release's chart or values instead; in an emergency, a member of a break-glass group may (docs/admission.md)."},
	{ReasonBreakGlass, ReasonKindRelease, "Admission let a member of a break-glass group change an object a VerifiedHelmRelease deployed. The change is recorded (a Warning event on the release, an audit annotation, chartproof_admission_decisions_total) and then handled as any drift: corrected, or reported in Warn mode."},
	{ReasonChartproofActing, ReasonKindSuccess, "Admission let chartproof change an object a VerifiedHelmRelease deployed: the manager's own identity, or the release's own ServiceAccount impersonated by the manager (the delivery.chartproof.dev/agent user extra)."},
	{ReasonExemptIdentity, ReasonKindSuccess, "Admission let an exempt system identity (by default kube-controller-manager and the ServiceAccounts of kube-system: the deployment, garbage-collector and namespace controllers) change an object a VerifiedHelmRelease deployed; what it changes in chartproof's fields is handled as drift."},
	{ReasonUnmanagedHelmRecord, ReasonKindDenial, "Admission refused a Helm release record (a Secret or ConfigMap labelled owner=helm) without chartproof's owner label in a namespace labelled delivery.chartproof.dev/enforce=true: a plain helm install or upgrade of a chart chartproof did not verify. Helm writes its record first, so nothing of the chart was created. Install it with a VerifiedHelmRelease. The webhook and a ValidatingAdmissionPolicy (which holds while the webhook is down) both refuse it (docs/admission.md)."},
	{ReasonNotGuarded, ReasonKindSuccess, "Admission let through a request its rule does not guard: an object without the owner label, or a Secret or ConfigMap that is not a Helm release record. The webhook configuration sends only what a rule guards; this is the handler's own check of it."},
	{ReasonStatusOnly, ReasonKindSuccess, "Admission let a change through the status subresource of an object a VerifiedHelmRelease deployed: it changes the status alone (what the object's controllers report: a Pod's by its kubelet, an Ingress's by its ingress controller), and leaves its metadata and spec as they were. A status request that also changes the labels, annotations or anything else is judged as any other change (OwnedObjectProtected)."},
	{ReasonCrossNamespaceReference, ReasonKindDenial, "A VerifiedHelmRelease's spec.trustPolicyRef names a TrustPolicy of another namespace: a release is judged only by its own namespace's TrustPolicies or a ClusterTrustPolicy, so a tenant cannot borrow (or be pointed at) another team's trust. Refused by the admission webhook when the release is applied, and by the controller (nothing is installed)."},
	{ReasonTargetNamespaceForbidden, ReasonKindDenial, "Admission refused a VerifiedHelmRelease whose ServiceAccount may not create Secrets (Helm's release records) in the namespace its records go to (spec.storageNamespace, else spec.targetNamespace, else its own), as the API server answered a SubjectAccessReview: it could install nothing there. Grant the account the rights, or target a namespace it may use. The rights on each object the chart renders are checked before an install by the preflight (PermissionsMissing)."},
	{ReasonWeakerThanMandatory, ReasonKindDenial, "Admission refused a TrustPolicy in Audit mode in a namespace a mandatory ClusterTrustPolicy binds (its namespaceSelector selects the namespace): there, every release must satisfy the mandatory policy in Enforce mode whatever the policy it names says, so an Audit policy would promise what it cannot do."},
	{ReasonTenancyChecked, ReasonKindSuccess, "Admission let a VerifiedHelmRelease or TrustPolicy through: it names no other namespace's policy, its account may write release records where they go, and it is not an Audit policy where a mandatory ClusterTrustPolicy binds."},
}
