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

	// SignatureRepositories are globs (the syntax of repositories) over the
	// repositories a release may name as its spec.chart.signatureRepository,
	// where its cosign signatures are read instead of beside the chart
	// (cosign's COSIGN_REPOSITORY). A release naming one that matches none
	// is refused with SignatureRepositoryNotAllowed before any request is
	// made there. Empty: signatures are read beside the chart only.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*][a-z0-9.:*-]*(/[a-z0-9*._-]+)+$`
	// +listType=set
	// +optional
	SignatureRepositories []string `json:"signatureRepositories,omitempty"`

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

	// NamespaceSelector makes a ClusterTrustPolicy mandatory: every
	// VerifiedHelmRelease in a namespace it selects whose chart repository
	// the policy covers must satisfy it, as well as the policy it names.
	// `{}` selects every namespace. While an Enforce policy binds a release
	// this way, the Audit mode of the policy the release names is not
	// honoured. Only a ClusterTrustPolicy may set it: a platform team binds
	// its namespaces, a tenant cannot.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Revocations withdraw trust without removing an authority: signers
	// whose signatures no longer count toward the threshold (all of a
	// revoked key's; a keyless identity's, or those it made after a time),
	// and charts refused whatever signs them. A change re-verifies every
	// release the policy judges at once.
	// +optional
	Revocations *Revocations `json:"revocations,omitempty"`

	// Freshness bounds the charts the policy admits by age and version,
	// whatever signs them (THREATS FRS-01, FRS-02).
	// +optional
	Freshness *Freshness `json:"freshness,omitempty"`

	// Attestations are the in-toto attestations the chart's manifest
	// digest must carry besides its signatures (SLSA provenance, an SBOM,
	// ...): each one verified under its authorities with the same identity,
	// log, time and revocation rules as a signature, its statement naming
	// the manifest digest, of the predicate type required, and satisfying
	// its condition. Every one must hold (docs/policy-provenance.md).
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Attestations []AttestationRequirement `json:"attestations,omitempty"`
}

// AttestationRequirement is one attestation a chart must carry.
type AttestationRequirement struct {
	// Name names the requirement in reasons and status, and in the
	// conditions of the requirements listed after it (attestations.<name>).
	// +kubebuilder:validation:Pattern=`^[a-z][a-zA-Z0-9_]{0,62}$`
	Name string `json:"name"`

	// PredicateType is the predicate type the verified in-toto statement
	// must have, e.g. https://slsa.dev/provenance/v1. What the registry's
	// metadata (annotations) says is a hint only.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	PredicateType string `json:"predicateType"`

	// Authorities, when set, are the signers of this attestation, instead
	// of the policy's authorities (a provenance attestation is signed by
	// the build platform, not by who releases the chart). They count for
	// this attestation only, never towards the signatures' threshold.
	// One of them signing is enough. At most 4: the API server bounds what
	// validating an authority nested this deep may cost.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	Authorities []Authority `json:"authorities,omitempty"`

	// Condition is a CEL expression that must be true: over predicate
	// (the verified statement's predicate), predicateType, subject (its
	// subjects: name and digest), signer (keyID; for a certificate issuer,
	// subject, subjectType and extensions, as Fulcio names them) and
	// attestations.<name> (the same of a requirement listed before this
	// one, as it held). Empty: any statement of the type holds. Its
	// worst-case cost is bounded when the policy is compiled.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Condition string `json:"condition,omitempty"`
}

// Freshness bounds what a policy admits by signature age and chart version.
type Freshness struct {
	// MaxSignatureAge: a signature counts only while its verified signing
	// time (a transparency log's or a timestamp authority's) is at most
	// this old, judged at every verification: an installed release whose
	// signatures age past it stops verifying (SignatureTooOld) until the
	// chart is signed again. A signature without a verified signing time
	// does not count.
	// +optional
	MaxSignatureAge *metav1.Duration `json:"maxSignatureAge,omitempty"`

	// MinChartVersion is the oldest chart version admitted, a semantic
	// version: a chart whose Chart.yaml version (or the tag it resolved
	// through) is lower, or not a semantic version, is refused whatever
	// signs it, in Audit mode too (ChartVersionTooOld).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	MinChartVersion string `json:"minChartVersion,omitempty"`
}

// Revocations is a revocation list: inline, and from a ConfigMap a security
// team may own apart from the policy. Both count.
type Revocations struct {
	RevocationList `json:",inline"`

	// ConfigMapRef reads more revocations from a key of a ConfigMap: YAML or
	// JSON with the fields of an inline list (keyIDs, identities,
	// certificates, digests), checked as strictly (an unknown field, a
	// malformed key ID, serial or digest make the policy invalid, and it
	// then denies every chart). From a
	// TrustPolicy the ConfigMap is in the policy's namespace.
	// +optional
	ConfigMapRef *RevocationsKeyReference `json:"configMapRef,omitempty"`
}

// RevocationList lists revoked signers and denied charts.
type RevocationList struct {
	// KeyIDs are revoked keys, as status.evidence names them: the sha256 of
	// the public key's PKIX DER encoding, lowercase hex (for a Helm
	// provenance authority, the OpenPGP key's fingerprint). A signature such
	// a key made no longer counts, whenever it was made (SignerRevoked).
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:Pattern=`^[0-9a-f]{40}$|^[0-9a-f]{64}$`
	// +listType=set
	// +optional
	KeyIDs []string `json:"keyIDs,omitempty"`

	// Identities are revoked keyless signers (SignerRevoked).
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	Identities []RevokedIdentity `json:"identities,omitempty"`

	// Certificates are revoked X.509 certificates, by issuer and serial
	// number: a signature whose validated certificate path (an x509
	// authority's, or the chain a Notation authority verified) holds one no
	// longer counts (SignerRevoked). The leaf,
	// an intermediate or a root may be revoked; revoking an intermediate
	// revokes everything it issued.
	// +kubebuilder:validation:MaxItems=1024
	// +listType=atomic
	// +optional
	Certificates []RevokedCertificate `json:"certificates,omitempty"`

	// Digests are denied charts: a chart manifest with one of these digests
	// is refused whatever signs it, in Audit mode too (DigestDenied).
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:Pattern=`^sha256:[0-9a-f]{64}$`
	// +listType=set
	// +optional
	Digests []string `json:"digests,omitempty"`
}

// RevokedIdentity is a keyless signer, the certificate's issuer and subject
// compared exactly, whose signatures no longer count.
type RevokedIdentity struct {
	// Issuer is the OIDC issuer the certificate names.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer"`

	// Subject is the certificate's subject alternative name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Subject string `json:"subject"`

	// SignedAfter, when set, revokes only the signatures whose verified
	// signing time (from a transparency log or a timestamp authority) is at
	// or after it: what the identity signed before it was compromised
	// still counts. A signature without a verified signing time is revoked.
	// Unset: every signature of the identity.
	// +optional
	SignedAfter *metav1.Time `json:"signedAfter,omitempty"`
}

// RevokedCertificate names one certificate: its issuer's certificate and
// its serial number. Certificate serial numbers are unique per issuer only.
type RevokedCertificate struct {
	// Issuer is the issuing CA's key ID: the SHA-256 of its public key's
	// DER SubjectPublicKeyInfo, 64 lowercase hex digits (`openssl x509 -in
	// ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum`).
	// For a root, its own. A key rather than a certificate fingerprint:
	// the intermediate a signature carries can be re-encoded without its
	// key changing.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	Issuer string `json:"issuer"`

	// Serial is the certificate's serial number in hex, as `openssl x509
	// -noout -serial` prints it (either case, no colons, at most 20 bytes).
	// +kubebuilder:validation:Pattern=`^[0-9A-Fa-f]{1,40}$`
	Serial string `json:"serial"`
}

// RevocationsKeyReference names one key of a ConfigMap holding a
// revocation list. From a TrustPolicy the ConfigMap is in the policy's
// namespace and namespace must be left out; from a ClusterTrustPolicy
// namespace is required.
type RevocationsKeyReference struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the ConfigMap's data. Defaults to "revocations.yaml".
	// +kubebuilder:default="revocations.yaml"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// Authority is one trusted signer. Exactly one kind of authority is set:
// `key` (one public key), `keyless` (Sigstore certificates naming an
// identity), `x509` (code-signing certificates of your own PKI),
// `helmProvenance` (OpenPGP keys signing Helm provenance files) or
// `notation` (Notary Project signatures under a trust store). Attestation
// requirements are added as further optional fields.
// +kubebuilder:validation:XValidation:rule="(has(self.key) ? 1 : 0) + (has(self.keyless) ? 1 : 0) + (has(self.x509) ? 1 : 0) + (has(self.helmProvenance) ? 1 : 0) + (has(self.notation) ? 1 : 0) == 1",message="an authority needs exactly one of: key, keyless, x509, helmProvenance, notation"
type Authority struct {
	// Name identifies the authority in status, events and metrics.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Key trusts signatures made with one public key.
	// +optional
	Key *KeyAuthority `json:"key,omitempty"`

	// Keyless trusts Sigstore keyless signatures: a short-lived certificate
	// from a certificate authority of the trusted root, naming one of the
	// identities, used while it was valid at a time a transparency log (or
	// timestamp authority) of the trusted root vouches for.
	// +optional
	Keyless *KeylessAuthority `json:"keyless,omitempty"`

	// X509 trusts cosign signatures made with the key of a code-signing
	// certificate that chains to its roots (bring-your-own PKI: `cosign sign
	// --key K --certificate C --certificate-chain CH`), the path validated
	// strictly.
	// +optional
	X509 *X509Authority `json:"x509,omitempty"`

	// HelmProvenance trusts Helm provenance files (`helm package --sign`,
	// pushed by `helm push` as the provenance layer of the chart's
	// manifest) signed by one of the OpenPGP keys it lists.
	// +optional
	HelmProvenance *HelmProvenanceAuthority `json:"helmProvenance,omitempty"`

	// Notation trusts Notary Project signatures (JWS or COSE envelopes,
	// as `notation sign` attaches them to the chart as OCI referrers)
	// whose certificate chain ends in its trust store and whose leaf
	// names one of its trusted identities.
	// +optional
	Notation *NotationAuthority `json:"notation,omitempty"`
}

// X509Authority trusts cosign signatures (either layout) that carry a leaf
// certificate of its PKI: the signature verifies under the leaf's key, and
// the leaf chains to one of its roots through CA certificates (its own
// intermediates, or those the signature carries, which add candidates but
// never trust), validated strictly (docs/security.md, THREATS PKI-*): the
// leaf has the codeSigning extended key usage (a leaf without an EKU
// extension, or with anyExtendedKeyUsage only, is refused, as Go's x509
// would not), the digitalSignature key usage, and is no CA; every issuer is
// a CA (basicConstraints) with keyCertSign, within its path length, its
// name constraints of forms chartproof enforces; keys are RSA of at least
// 2048 bits, ECDSA P-256 or P-384, or Ed25519, signatures SHA-256 or
// stronger; no unknown critical extension. Every certificate of the path
// must be valid at the signing time trustedRoot vouches for, or now when
// the authority names no trustedRoot. The leaf must name one of the
// identities in a URI or email Subject Alternative Name.
type X509Authority struct {
	// Roots are the trusted root CA certificates: self-signed CA
	// certificates, with keyCertSign when they carry a key usage.
	Roots CertificatesSource `json:"roots"`

	// Intermediates are intermediate CA certificates to build paths with,
	// besides those a signature carries in its chain.
	// +optional
	Intermediates *CertificatesSource `json:"intermediates,omitempty"`

	// Identities the leaf certificate may name; one must match.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Identities []X509Identity `json:"identities"`

	// TrustedRoot holds the transparency logs and timestamp authorities
	// (trusted_root.json; its certificate authorities play no part) that
	// vouch for signing times. Set: a signature counts only with a signing
	// time from one of them (a log's integrated time, or an RFC 3161
	// timestamp over the signature), and the path must be valid at that
	// time, so a certificate that expired since still counts for what it
	// signed while valid. Unset: the path must be valid now.
	// +optional
	TrustedRoot *TrustedRootReference `json:"trustedRoot,omitempty"`

	// Revocation says how the revocation status of each certificate of a
	// validated path is established: OCSP where the certificate names a
	// responder, else the CRLs of its distribution points (served from
	// the cluster when crls names them). Checked at every verification,
	// whatever this says; it sets the mode, the CRLs and the bounds.
	// +optional
	Revocation *X509Revocation `json:"revocation,omitempty"`
}

// X509Revocation bounds and tunes the revocation checks of an x509
// authority's certificates (CRL and OCSP).
type X509Revocation struct {
	// Mode is Enforce (the default): a certificate that names a CRL
	// distribution point or an OCSP responder whose status cannot be
	// established (no answer, a stale CRL, one signed by another issuer)
	// keeps the signature from counting (RevocationUnknown, inconclusive:
	// retried soon). SoftFail counts such a signature, and the evidence
	// says its status was unknown. A revoked certificate never counts.
	// +kubebuilder:validation:Enum=Enforce;SoftFail
	// +optional
	Mode string `json:"mode,omitempty"`

	// CRLs serve distribution points from the cluster, for clusters that
	// cannot reach them or a CRL a security team publishes: a certificate
	// naming one of these URLs is checked against the object's CRL, which
	// is never fetched.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	CRLs []CRLSource `json:"crls,omitempty"`

	// RefreshInterval is the longest a CRL or OCSP answer is used before it
	// is fetched again, whatever its nextUpdate says. Default 60s.
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`

	// Timeout bounds each CRL download and OCSP request. Default 5s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// CRLSource is a CRL (DER, or PEM "X509 CRL") kept in the cluster for
// one distribution point: in a ConfigMap (binaryData for DER) or a Secret.
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="exactly one of configMapRef and secretRef"
type CRLSource struct {
	// URL is the distribution point, exactly as certificates name it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`

	// ConfigMapRef names the ConfigMap key holding the CRL.
	// +optional
	ConfigMapRef *CRLKeyReference `json:"configMapRef,omitempty"`

	// SecretRef names the Secret key holding the CRL.
	// +optional
	SecretRef *CRLKeyReference `json:"secretRef,omitempty"`
}

// CRLKeyReference names one key of a ConfigMap or Secret. From a
// TrustPolicy the object is in the policy's namespace and namespace must be
// left out; from a ClusterTrustPolicy namespace is required.
type CRLKeyReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the object; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key holding the CRL. Defaults to "crl".
	// +kubebuilder:default="crl"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// X509Identity is one signer a code-signing certificate may name.
type X509Identity struct {
	// SubjectAlternativeName is compared exactly with each URI and email
	// address Subject Alternative Name of the leaf.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	SubjectAlternativeName string `json:"subjectAlternativeName"`
}

// NotationAuthority is one Notation trust-policy statement, verified at
// Notation's `strict` level (integrity, authenticity, authentic timestamp,
// expiry and revocation all enforced), for the charts the policy's
// repositories cover. A signature counts when its envelope verifies, names
// exactly the chart's manifest (digest, size and media type), its chain ends
// in the trust store of its signing scheme (`ca` for notary.x509,
// `signingAuthority` for notary.x509.signingAuthority, timestamps in `tsa`),
// its leaf's subject matches a trusted identity, and it needs no plugin.
// +kubebuilder:validation:XValidation:rule="has(self.trustStore.ca) || has(self.trustStore.signingAuthority)",message="a notation trust store needs ca or signingAuthority certificates"
// +kubebuilder:validation:XValidation:rule="!self.trustedIdentities.exists(i, i == '*') || (has(self.allowAnyIdentity) && self.allowAnyIdentity && size(self.trustedIdentities) == 1)",message="the identity '*' trusts every certificate of the trust store: it needs allowAnyIdentity: true and no other identity (THREATS NOT-03)"
type NotationAuthority struct {
	// TrustStore holds the trusted certificates, by Notation's trust store
	// types.
	TrustStore NotationTrustStore `json:"trustStore"`

	// TrustedIdentities are Notation trusted identities:
	// `x509.subject: C=US, ST=WA, O=Acme, CN=release` (RFC 4514, at least
	// C, ST and O; a certificate matches when its subject has every
	// attribute given), or `*` with allowAnyIdentity.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	TrustedIdentities []string `json:"trustedIdentities"`

	// AllowAnyIdentity lets trustedIdentities be `*`: any certificate the
	// trust store vouches for counts. Off by default.
	// +optional
	AllowAnyIdentity bool `json:"allowAnyIdentity,omitempty"`
}

// NotationTrustStore holds certificates by Notation trust store type.
type NotationTrustStore struct {
	// CA certificates (CA or self-signed signing certificates) for the
	// notary.x509 signing scheme.
	// +optional
	CA *CertificatesSource `json:"ca,omitempty"`

	// SigningAuthority certificates for the notary.x509.signingAuthority
	// signing scheme.
	// +optional
	SigningAuthority *CertificatesSource `json:"signingAuthority,omitempty"`

	// TSA root certificates of the timestamp authorities whose
	// countersignatures vouch for a signing time.
	// +optional
	TSA *CertificatesSource `json:"tsa,omitempty"`
}

// CertificatesSource is PEM certificates, inline or in a ConfigMap.
// Exactly one of certificates and configMapRef is set.
// +kubebuilder:validation:XValidation:rule="has(self.certificates) != has(self.configMapRef)",message="set exactly one of certificates and configMapRef"
type CertificatesSource struct {
	// Certificates are PEM CERTIFICATE blocks.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	Certificates string `json:"certificates,omitempty"`

	// ConfigMapRef names a ConfigMap key holding PEM certificates.
	// +optional
	ConfigMapRef *CertificatesKeyReference `json:"configMapRef,omitempty"`
}

// CertificatesKeyReference names one key of a ConfigMap. From a TrustPolicy
// the ConfigMap is in the policy's namespace and namespace must be left
// out; from a ClusterTrustPolicy namespace is required.
type CertificatesKeyReference struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the ConfigMap's data. Defaults to "ca.crt".
	// +kubebuilder:default="ca.crt"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// HelmProvenanceAuthority trusts the OpenPGP keys of a keyring whose primary
// key fingerprints it lists; other keys of the keyring count for nothing,
// and no keyring of the machine is ever read. A provenance file counts when
// it is exactly one clearsigned message (SHA-256 or stronger) made by the
// signing key or subkey of an allowed key (RSA of at least 2048 bits, ECDSA,
// EdDSA), unexpired and unrevoked when it signed and now, and when its single file
// entry names `<name>-<version>.tgz` of the chart's Chart.yaml with the
// sha256 of the exact chart layer, and its copy of Chart.yaml agrees on
// name and version. Exactly one of publicKeys and keyringRef is set.
// +kubebuilder:validation:XValidation:rule="has(self.publicKeys) != has(self.keyringRef)",message="set exactly one of publicKeys and keyringRef"
type HelmProvenanceAuthority struct {
	// PublicKeys is an ASCII-armored OpenPGP public keyring, as
	// `gpg --export --armor KEY...` writes it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	// +optional
	PublicKeys string `json:"publicKeys,omitempty"`

	// KeyringRef names the ConfigMap or Secret key holding the
	// ASCII-armored keyring.
	// +optional
	KeyringRef *KeyringReference `json:"keyringRef,omitempty"`

	// Fingerprints are the primary key fingerprints (40 hex digits for a v4
	// key, 64 for a v6 key, no spaces) of the keys this authority trusts.
	// Each must be in the keyring.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$`
	// +listType=set
	Fingerprints []string `json:"fingerprints"`
}

// KeyringReference names the ConfigMap or Secret key that holds an
// ASCII-armored OpenPGP keyring. Exactly one of configMapRef and secretRef
// is set.
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) != has(self.secretRef)",message="set exactly one of configMapRef and secretRef"
type KeyringReference struct {
	// ConfigMapRef names a ConfigMap key holding the keyring.
	// +optional
	ConfigMapRef *KeyringKeyReference `json:"configMapRef,omitempty"`

	// SecretRef names a Secret key holding the keyring.
	// +optional
	SecretRef *KeyringKeyReference `json:"secretRef,omitempty"`
}

// KeyringKeyReference names one key of a ConfigMap or Secret. From a
// TrustPolicy the object is in the policy's namespace and namespace must be
// left out; from a ClusterTrustPolicy namespace is required.
type KeyringKeyReference struct {
	// Name of the ConfigMap or Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap or Secret; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the object's data. Defaults to "pubring.asc".
	// +kubebuilder:default="pubring.asc"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// KeyAuthority is a public key: ECDSA P-256 or P-384, Ed25519, or RSA of at
// least 2048 bits, PEM-encoded (PKIX "PUBLIC KEY"), given inline or in a
// Secret. Exactly one of publicKey and secretRef is set.
// +kubebuilder:validation:XValidation:rule="has(self.publicKey) != has(self.secretRef)",message="set exactly one of publicKey and secretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.trustedRoot) || (has(self.requireTransparencyLog) && self.requireTransparencyLog)",message="trustedRoot is read only with requireTransparencyLog: true"
// +kubebuilder:validation:XValidation:rule="!has(self.validFor) || (has(self.requireTransparencyLog) && self.requireTransparencyLog)",message="validFor needs a trusted signing time: set requireTransparencyLog: true"
type KeyAuthority struct {
	// PublicKey is the PEM-encoded public key.
	// +kubebuilder:validation:MaxLength=16384
	// +optional
	PublicKey string `json:"publicKey,omitempty"`

	// SecretRef names a Secret key holding the PEM-encoded public key.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// RequireTransparencyLog counts a signature by this key only when it is
	// recorded in a transparency log of trustedRoot: a Rekor v1 entry with a
	// signed entry timestamp or an inclusion proof, or a Rekor v2 entry with
	// an inclusion proof, tied to this signature and artifact, and a log or
	// timestamp authority of the root vouching for the signing time. The
	// log entry and the signing time are recorded in the release's evidence.
	// A signature the key verifies but no log records is refused with
	// NotLogged. Default false: a keyed signature needs no log.
	// +optional
	RequireTransparencyLog bool `json:"requireTransparencyLog,omitempty"`

	// TrustedRoot holds the transparency logs (and timestamp authorities)
	// that requireTransparencyLog trusts, in trusted_root.json format.
	// Absent means the Sigstore public-good root shipped with chartproof.
	// Only read with requireTransparencyLog: true.
	// +optional
	TrustedRoot *TrustedRootReference `json:"trustedRoot,omitempty"`

	// ValidFor is when the key may sign: a signature counts only when its
	// signing time, as the transparency log or a timestamp authority of
	// trustedRoot vouches for it, lies in the window (both ends included).
	// A signature outside it is refused with KeyNotValidAtSigningTime. Use
	// it to retire a key without invalidating what it signed before.
	// Needs requireTransparencyLog: true, the source of a trusted time.
	// +optional
	ValidFor *ValidityWindow `json:"validFor,omitempty"`
}

// ValidityWindow is a closed time interval; end may be left open.
// +kubebuilder:validation:XValidation:rule="!has(self.end) || self.start <= self.end",message="end must not be before start"
type ValidityWindow struct {
	// Start is the first instant of the window.
	Start metav1.Time `json:"start"`
	// End is the last instant of the window; absent means no end.
	// +optional
	End *metav1.Time `json:"end,omitempty"`
}

// KeylessAuthority trusts certificates issued by a Sigstore certificate
// authority (Fulcio) to the identities listed. A signature counts for the
// authority only when its certificate chains to a certificate authority of
// the trusted root at the signing time, the signature is recorded in a
// transparency log of the trusted root (with an inclusion proof or promise
// tied to this signature), a log or timestamp authority of the trusted root
// vouches for the signing time, the certificate carries an SCT from a CT log
// of the trusted root when the trusted root lists any, and the certificate
// names one of the identities. There is no "any signer".
type KeylessAuthority struct {
	// TrustedRoot is the Sigstore trusted root (trusted_root.json: certificate
	// authorities, transparency logs, CT logs, timestamp authorities). Absent
	// means the Sigstore public-good root shipped with chartproof (see
	// docs/policy-keyless.md); nothing is fetched over the network.
	// +optional
	TrustedRoot *TrustedRootReference `json:"trustedRoot,omitempty"`

	// Identities are the certificate identities this authority trusts; a
	// certificate that names any one of them counts. Each constrains both the
	// OIDC issuer and the subject.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Identities []Identity `json:"identities"`
}

// TrustedRootReference says where a Sigstore trusted root in JSON
// (trusted_root.json) comes from: a ConfigMap or Secret key, or a TUF
// repository that keeps it fresh. Exactly one of configMapRef, secretRef and
// tuf is set.
// +kubebuilder:validation:XValidation:rule="(has(self.configMapRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) + (has(self.tuf) ? 1 : 0) == 1",message="set exactly one of configMapRef, secretRef and tuf"
type TrustedRootReference struct {
	// TUF reads the trusted root from a TUF repository with sigstore-go's
	// TUF client, starting from a pinned root.json, and reads it again every
	// refreshInterval: a root Sigstore rotates is followed without an
	// upgrade of chartproof, and metadata that is expired, rolled back or
	// not signed by the root's keys is refused.
	// +optional
	TUF *TUFRepositoryReference `json:"tuf,omitempty"`

	// ConfigMapRef names a ConfigMap key holding the trusted root.
	// +optional
	ConfigMapRef *TrustedRootKeyReference `json:"configMapRef,omitempty"`

	// SecretRef names a Secret key holding the trusted root.
	// +optional
	SecretRef *TrustedRootKeyReference `json:"secretRef,omitempty"`
}

// TUFRepositoryReference names a TUF repository serving a Sigstore
// trusted_root.json target. Without url and configMapRef it is the Sigstore
// public-good repository, started from the root.json chartproof ships
// (sigstore-go's); only that one falls back to the trusted root chartproof
// embeds while it cannot be reached and nothing read from it verified yet
// (an air-gapped cluster). Metadata that does not verify is never replaced
// by the embedded root: the last trusted root verified is used until its
// metadata expires, and then nothing.
// +kubebuilder:validation:XValidation:rule="!(has(self.url) && has(self.configMapRef))",message="set at most one of url and configMapRef"
// +kubebuilder:validation:XValidation:rule="has(self.root) || (!has(self.url) && !has(self.configMapRef)) || self.url == 'https://tuf-repo-cdn.sigstore.dev'",message="a repository other than the public-good one needs root: the root.json to start from"
type TUFRepositoryReference struct {
	// URL of the repository: metadata at URL, targets under URL/targets.
	// Default https://tuf-repo-cdn.sigstore.dev (the public-good one).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	// +optional
	URL string `json:"url,omitempty"`

	// ConfigMapRef names an air-gapped copy of the repository: a ConfigMap
	// whose keys are the repository's file names (N.root.json,
	// timestamp.json, N.snapshot.json, N.targets.json, and the target as
	// <sha256>.trusted_root.json). It is verified as a repository read over
	// the network would be, at every change of the ConfigMap; keep its
	// timestamp from expiring.
	// +optional
	ConfigMapRef *TUFFilesReference `json:"configMapRef,omitempty"`

	// Root names the ConfigMap key holding the root.json the client starts
	// from and trusts. Required unless the repository is the public-good one.
	// +optional
	Root *TUFRootReference `json:"root,omitempty"`

	// RefreshInterval is how often the repository is read again. Default
	// 5m, at least 30s.
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
}

// TUFFilesReference names the ConfigMap holding an air-gapped copy of a TUF
// repository. From a TrustPolicy it is in the policy's namespace and
// namespace must be left out; from a ClusterTrustPolicy namespace is
// required.
type TUFFilesReference struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// TUFRootReference names the ConfigMap key holding a TUF root.json. From a
// TrustPolicy the ConfigMap is in the policy's namespace and namespace must
// be left out; from a ClusterTrustPolicy namespace is required.
type TUFRootReference struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the ConfigMap's data. Defaults to "root.json".
	// +kubebuilder:default="root.json"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// TrustedRootKeyReference names one key of a ConfigMap or Secret. From a
// TrustPolicy the object is in the policy's namespace and namespace must be
// left out; from a ClusterTrustPolicy namespace is required.
type TrustedRootKeyReference struct {
	// Name of the ConfigMap or Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the ConfigMap or Secret; only for ClusterTrustPolicy.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Key in the object's data. Defaults to "trusted_root.json".
	// +kubebuilder:default="trusted_root.json"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// Identity is one certificate identity: the OIDC issuer that vouched for the
// signer (certificate extension 1.3.6.1.4.1.57264.1.8, or the deprecated
// .1.1) and the subject the certificate was issued to (its Subject
// Alternative Name: a URI such as a CI workflow, or an email address), plus
// optional checks of the other Fulcio certificate extensions. Each of issuer
// and subject is given exactly, or as a regular expression. Regular
// expressions are RE2 (Go's regexp syntax) and are anchored by chartproof:
// `https://github.com/org/` matches that string only, never a longer one;
// write `https://github.com/org/.*` to match a prefix.
// +kubebuilder:validation:XValidation:rule="has(self.issuer) != has(self.issuerRegExp)",message="set exactly one of issuer and issuerRegExp"
// +kubebuilder:validation:XValidation:rule="has(self.subject) != has(self.subjectRegExp)",message="set exactly one of subject and subjectRegExp"
// +kubebuilder:validation:XValidation:rule="!has(self.subjectRegExp) || ('canary'.matches(self.subjectRegExp) == 'canary'.matches(self.subjectRegExp) && !['https://canary.chartproof.invalid', 'https://canary.chartproof.invalid/.github/workflows/release.yaml@refs/heads/main', 'canary@canary.chartproof.invalid', 'spiffe://canary.chartproof.invalid/ns/canary/sa/canary', 'canary'].exists(c, c.matches('^(?:' + self.subjectRegExp + ')$')))",message="subjectRegExp must compile on its own and constrain the signer: it accepts anyone (THREATS POL-01)"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRegExp) || ('canary'.matches(self.issuerRegExp) == 'canary'.matches(self.issuerRegExp) && !['https://canary.chartproof.invalid', 'https://canary.chartproof.invalid/.github/workflows/release.yaml@refs/heads/main', 'canary@canary.chartproof.invalid', 'spiffe://canary.chartproof.invalid/ns/canary/sa/canary', 'canary'].exists(c, c.matches('^(?:' + self.issuerRegExp + ')$')))",message="issuerRegExp must compile on its own and constrain the issuer: it accepts any issuer (THREATS POL-01)"
type Identity struct {
	// Issuer is the exact OIDC issuer URL, such as
	// https://token.actions.githubusercontent.com.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// IssuerRegExp is an RE2 regular expression the whole issuer must match.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	IssuerRegExp string `json:"issuerRegExp,omitempty"`

	// Subject is the exact Subject Alternative Name, such as
	// https://github.com/org/repo/.github/workflows/release.yaml@refs/heads/main.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Subject string `json:"subject,omitempty"`

	// SubjectRegExp is an RE2 regular expression the whole Subject
	// Alternative Name must match.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	SubjectRegExp string `json:"subjectRegExp,omitempty"`

	// SubjectType, when set, is the kind of Subject Alternative Name the
	// certificate must carry: `email` (an rfc822Name, as Fulcio issues for
	// email-verified issuers), `uri` (a URI, as for CI workflows and SPIFFE
	// IDs) or `otherName` (Fulcio's username SAN). A subject written for one
	// kind then never matches a SAN of another kind that happens to spell
	// the same string.
	// +kubebuilder:validation:Enum=email;uri;otherName
	// +optional
	SubjectType SubjectType `json:"subjectType,omitempty"`

	// Extensions are further Fulcio certificate extensions that must match,
	// all of them. An extension the certificate lacks does not match.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Extensions []ExtensionMatch `json:"extensions,omitempty"`
}

// SubjectType is the kind of a certificate's Subject Alternative Name.
type SubjectType string

// The kinds of Subject Alternative Name Fulcio issues.
const (
	SubjectTypeEmail     SubjectType = "email"
	SubjectTypeURI       SubjectType = "uri"
	SubjectTypeOtherName SubjectType = "otherName"
)

// ExtensionMatch checks one Fulcio certificate extension, named as in
// sigstore-go's certificate.Extensions (see
// https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md), exactly or
// against an anchored RE2 regular expression. Exactly one of value and
// regExp is set.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.regExp)",message="set exactly one of value and regExp"
type ExtensionMatch struct {
	// Name of the extension.
	// +kubebuilder:validation:Enum=githubWorkflowTrigger;githubWorkflowSHA;githubWorkflowName;githubWorkflowRepository;githubWorkflowRef;buildSignerURI;buildSignerDigest;runnerEnvironment;sourceRepositoryURI;sourceRepositoryDigest;sourceRepositoryRef;sourceRepositoryIdentifier;sourceRepositoryOwnerURI;sourceRepositoryOwnerIdentifier;buildConfigURI;buildConfigDigest;buildTrigger;runInvocationURI;sourceRepositoryVisibilityAtSigning
	Name string `json:"name"`

	// Value is the exact value the extension must have.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Value string `json:"value,omitempty"`

	// RegExp is an RE2 regular expression the whole value must match.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	RegExp string `json:"regExp,omitempty"`
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
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.keyless) || !has(a.keyless.trustedRoot) || ((!has(a.keyless.trustedRoot.configMapRef) || !has(a.keyless.trustedRoot.configMapRef.__namespace__) || size(a.keyless.trustedRoot.configMapRef.__namespace__) == 0) && (!has(a.keyless.trustedRoot.secretRef) || !has(a.keyless.trustedRoot.secretRef.__namespace__) || size(a.keyless.trustedRoot.secretRef.__namespace__) == 0)))",message="a TrustPolicy's trusted root references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.trustedRoot) || ((!has(a.key.trustedRoot.configMapRef) || !has(a.key.trustedRoot.configMapRef.__namespace__) || size(a.key.trustedRoot.configMapRef.__namespace__) == 0) && (!has(a.key.trustedRoot.secretRef) || !has(a.key.trustedRoot.secretRef.__namespace__) || size(a.key.trustedRoot.secretRef.__namespace__) == 0)))",message="a TrustPolicy's trusted root references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || !has(a.x509.trustedRoot) || ((!has(a.x509.trustedRoot.configMapRef) || !has(a.x509.trustedRoot.configMapRef.__namespace__) || size(a.x509.trustedRoot.configMapRef.__namespace__) == 0) && (!has(a.x509.trustedRoot.secretRef) || !has(a.x509.trustedRoot.secretRef.__namespace__) || size(a.x509.trustedRoot.secretRef.__namespace__) == 0)))",message="a TrustPolicy's trusted root references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.helmProvenance) || !has(a.helmProvenance.keyringRef) || ((!has(a.helmProvenance.keyringRef.configMapRef) || !has(a.helmProvenance.keyringRef.configMapRef.__namespace__) || size(a.helmProvenance.keyringRef.configMapRef.__namespace__) == 0) && (!has(a.helmProvenance.keyringRef.secretRef) || !has(a.helmProvenance.keyringRef.secretRef.__namespace__) || size(a.helmProvenance.keyringRef.secretRef.__namespace__) == 0)))",message="a TrustPolicy's keyring references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.revocations) || !has(self.spec.revocations.configMapRef) || !has(self.spec.revocations.configMapRef.__namespace__) || size(self.spec.revocations.configMapRef.__namespace__) == 0",message="a TrustPolicy's revocation list is in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.notation) || ((!has(a.notation.trustStore.ca) || !has(a.notation.trustStore.ca.configMapRef) || !has(a.notation.trustStore.ca.configMapRef.__namespace__) || size(a.notation.trustStore.ca.configMapRef.__namespace__) == 0) && (!has(a.notation.trustStore.signingAuthority) || !has(a.notation.trustStore.signingAuthority.configMapRef) || !has(a.notation.trustStore.signingAuthority.configMapRef.__namespace__) || size(a.notation.trustStore.signingAuthority.configMapRef.__namespace__) == 0) && (!has(a.notation.trustStore.tsa) || !has(a.notation.trustStore.tsa.configMapRef) || !has(a.notation.trustStore.tsa.configMapRef.__namespace__) || size(a.notation.trustStore.tsa.configMapRef.__namespace__) == 0)))",message="a TrustPolicy's certificate references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || ((!has(a.x509.roots.configMapRef) || !has(a.x509.roots.configMapRef.__namespace__) || size(a.x509.roots.configMapRef.__namespace__) == 0) && (!has(a.x509.intermediates) || !has(a.x509.intermediates.configMapRef) || !has(a.x509.intermediates.configMapRef.__namespace__) || size(a.x509.intermediates.configMapRef.__namespace__) == 0)))",message="a TrustPolicy's certificate references are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.namespaceSelector)",message="namespaceSelector makes a policy mandatory for namespaces: only a ClusterTrustPolicy may set it"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.trustedRoot) || !has(a.key.trustedRoot.tuf) || ((!has(a.key.trustedRoot.tuf.root) || !has(a.key.trustedRoot.tuf.root.__namespace__) || size(a.key.trustedRoot.tuf.root.__namespace__) == 0) && (!has(a.key.trustedRoot.tuf.configMapRef) || !has(a.key.trustedRoot.tuf.configMapRef.__namespace__) || size(a.key.trustedRoot.tuf.configMapRef.__namespace__) == 0)))",message="a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.keyless) || !has(a.keyless.trustedRoot) || !has(a.keyless.trustedRoot.tuf) || ((!has(a.keyless.trustedRoot.tuf.root) || !has(a.keyless.trustedRoot.tuf.root.__namespace__) || size(a.keyless.trustedRoot.tuf.root.__namespace__) == 0) && (!has(a.keyless.trustedRoot.tuf.configMapRef) || !has(a.keyless.trustedRoot.tuf.configMapRef.__namespace__) || size(a.keyless.trustedRoot.tuf.configMapRef.__namespace__) == 0)))",message="a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || !has(a.x509.trustedRoot) || !has(a.x509.trustedRoot.tuf) || ((!has(a.x509.trustedRoot.tuf.root) || !has(a.x509.trustedRoot.tuf.root.__namespace__) || size(a.x509.trustedRoot.tuf.root.__namespace__) == 0) && (!has(a.x509.trustedRoot.tuf.configMapRef) || !has(a.x509.trustedRoot.tuf.configMapRef.__namespace__) || size(a.x509.trustedRoot.tuf.configMapRef.__namespace__) == 0)))",message="a TrustPolicy's TUF references (tuf.root, tuf.configMapRef) are in its own namespace and must not name one"
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
// name, and, with a namespaceSelector, one that binds the releases of the
// namespaces it selects. Its Secret references must name their namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ctp
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Threshold",type=integer,JSONPath=`.spec.threshold`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.secretRef) || (has(a.key.secretRef.__namespace__) && size(a.key.secretRef.__namespace__) > 0))",message="a ClusterTrustPolicy's Secret references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.keyless) || !has(a.keyless.trustedRoot) || ((!has(a.keyless.trustedRoot.configMapRef) || (has(a.keyless.trustedRoot.configMapRef.__namespace__) && size(a.keyless.trustedRoot.configMapRef.__namespace__) > 0)) && (!has(a.keyless.trustedRoot.secretRef) || (has(a.keyless.trustedRoot.secretRef.__namespace__) && size(a.keyless.trustedRoot.secretRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's trusted root references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.trustedRoot) || ((!has(a.key.trustedRoot.configMapRef) || (has(a.key.trustedRoot.configMapRef.__namespace__) && size(a.key.trustedRoot.configMapRef.__namespace__) > 0)) && (!has(a.key.trustedRoot.secretRef) || (has(a.key.trustedRoot.secretRef.__namespace__) && size(a.key.trustedRoot.secretRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's trusted root references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || !has(a.x509.trustedRoot) || ((!has(a.x509.trustedRoot.configMapRef) || (has(a.x509.trustedRoot.configMapRef.__namespace__) && size(a.x509.trustedRoot.configMapRef.__namespace__) > 0)) && (!has(a.x509.trustedRoot.secretRef) || (has(a.x509.trustedRoot.secretRef.__namespace__) && size(a.x509.trustedRoot.secretRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's trusted root references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.helmProvenance) || !has(a.helmProvenance.keyringRef) || ((!has(a.helmProvenance.keyringRef.configMapRef) || (has(a.helmProvenance.keyringRef.configMapRef.__namespace__) && size(a.helmProvenance.keyringRef.configMapRef.__namespace__) > 0)) && (!has(a.helmProvenance.keyringRef.secretRef) || (has(a.helmProvenance.keyringRef.secretRef.__namespace__) && size(a.helmProvenance.keyringRef.secretRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's keyring references must name their namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.revocations) || !has(self.spec.revocations.configMapRef) || (has(self.spec.revocations.configMapRef.__namespace__) && size(self.spec.revocations.configMapRef.__namespace__) > 0)",message="a ClusterTrustPolicy's revocation list must name its namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.notation) || ((!has(a.notation.trustStore.ca) || !has(a.notation.trustStore.ca.configMapRef) || (has(a.notation.trustStore.ca.configMapRef.__namespace__) && size(a.notation.trustStore.ca.configMapRef.__namespace__) > 0)) && (!has(a.notation.trustStore.signingAuthority) || !has(a.notation.trustStore.signingAuthority.configMapRef) || (has(a.notation.trustStore.signingAuthority.configMapRef.__namespace__) && size(a.notation.trustStore.signingAuthority.configMapRef.__namespace__) > 0)) && (!has(a.notation.trustStore.tsa) || !has(a.notation.trustStore.tsa.configMapRef) || (has(a.notation.trustStore.tsa.configMapRef.__namespace__) && size(a.notation.trustStore.tsa.configMapRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's certificate references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || ((!has(a.x509.roots.configMapRef) || (has(a.x509.roots.configMapRef.__namespace__) && size(a.x509.roots.configMapRef.__namespace__) > 0)) && (!has(a.x509.intermediates) || !has(a.x509.intermediates.configMapRef) || (has(a.x509.intermediates.configMapRef.__namespace__) && size(a.x509.intermediates.configMapRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's certificate references must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.key) || !has(a.key.trustedRoot) || !has(a.key.trustedRoot.tuf) || ((!has(a.key.trustedRoot.tuf.root) || (has(a.key.trustedRoot.tuf.root.__namespace__) && size(a.key.trustedRoot.tuf.root.__namespace__) > 0)) && (!has(a.key.trustedRoot.tuf.configMapRef) || (has(a.key.trustedRoot.tuf.configMapRef.__namespace__) && size(a.key.trustedRoot.tuf.configMapRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's TUF references (tuf.root, tuf.configMapRef) must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.keyless) || !has(a.keyless.trustedRoot) || !has(a.keyless.trustedRoot.tuf) || ((!has(a.keyless.trustedRoot.tuf.root) || (has(a.keyless.trustedRoot.tuf.root.__namespace__) && size(a.keyless.trustedRoot.tuf.root.__namespace__) > 0)) && (!has(a.keyless.trustedRoot.tuf.configMapRef) || (has(a.keyless.trustedRoot.tuf.configMapRef.__namespace__) && size(a.keyless.trustedRoot.tuf.configMapRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's TUF references (tuf.root, tuf.configMapRef) must name their namespace"
// +kubebuilder:validation:XValidation:rule="self.spec.authorities.all(a, !has(a.x509) || !has(a.x509.trustedRoot) || !has(a.x509.trustedRoot.tuf) || ((!has(a.x509.trustedRoot.tuf.root) || (has(a.x509.trustedRoot.tuf.root.__namespace__) && size(a.x509.trustedRoot.tuf.root.__namespace__) > 0)) && (!has(a.x509.trustedRoot.tuf.configMapRef) || (has(a.x509.trustedRoot.tuf.configMapRef.__namespace__) && size(a.x509.trustedRoot.tuf.configMapRef.__namespace__) > 0))))",message="a ClusterTrustPolicy's TUF references (tuf.root, tuf.configMapRef) must name their namespace"
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
