package policy

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// Layout is where a signature was found in the registry.
type Layout string

const (
	// LayoutCosignLegacy is cosign's "sha256-<hex>.sig" tag holding
	// simple-signing payloads.
	LayoutCosignLegacy Layout = "cosign-legacy"
	// LayoutSigstoreBundle is a Sigstore bundle attached as an OCI referrer
	// (through the referrers API or its fallback tag).
	LayoutSigstoreBundle Layout = "sigstore-bundle"
	// LayoutHelmProvenance is the Helm provenance file (.prov) `helm push`
	// writes as a layer of the chart's own manifest.
	LayoutHelmProvenance Layout = "helm-provenance"
	// LayoutNotation is a Notary Project signature (JWS or COSE envelope)
	// attached as an OCI referrer.
	LayoutNotation Layout = "notation"
)

// layoutOf is the only layout an authority's signatures come in; "" for a
// key authority (both cosign layouts).
func (a Authority) layoutOf() Layout {
	switch {
	case a.Provenance != nil:
		return LayoutHelmProvenance
	case a.Notation != nil:
		return LayoutNotation
	}
	return ""
}

// reads reports whether a signature in layout l can count for a.
func (a Authority) reads(l Layout) bool {
	if own := a.layoutOf(); own != "" {
		return l == own
	}
	return l != LayoutHelmProvenance && l != LayoutNotation
}

// Evidence is what internal/oci and internal/verify established about one
// digest of one repository. It holds facts only; Evaluate judges them.
type Evidence struct {
	// Repository is the normalized chart repository, host[:port]/path/name.
	Repository string
	// Digest is the manifest digest being decided, resolved exactly once.
	Digest string
	// Failure is set when the evidence could not be gathered: the registry
	// was unreachable, or what it sent failed a digest, size or shape check.
	Failure *Failure
	// Signatures are all signatures found for Digest, in both layouts, up
	// to the cap. Each was checked against every authority.
	Signatures []Signature
	// Attestations are the in-toto attestations found for Digest (each
	// with Attestation set), checked by the verifier of each attestation
	// requirement's authorities; gathered only for a policy that requires
	// some.
	Attestations []Signature
	// Content is the result of reading the chart archive by Digest, when it
	// was read (before an install). Nil means it was not read.
	Content *Failure
	// ChartLayer is the digest of the chart layer the manifest of Digest
	// lists: what a Helm provenance file must vouch for.
	ChartLayer string
	// Chart is the name and version of the archive's Chart.yaml, once it
	// was read and loaded; nil before.
	Chart *ChartMeta
	// SignatureRepository is the normalized repository the release reads
	// its cosign signatures from instead of Repository; empty when it reads
	// them beside the chart.
	SignatureRepository string
	// Tag is the tag the version resolved through; empty for a digest.
	Tag string
	// Floor is the newest chart the release verified and installed; nil
	// when it installed none (or for `chartproof verify`).
	Floor *chartproofv1.ChartRecord
	// AllowDowngrade lets the chart be older than Floor.
	AllowDowngrade bool
	// Now is when the evidence is judged, for the age of signatures; zero
	// means the time Evaluate runs.
	Now time.Time
}

// ChartMeta is the name and version of a chart's Chart.yaml.
type ChartMeta struct {
	Name, Version string
}

// Failure is a fact about gathering evidence that went wrong.
type Failure struct {
	Code    string // a reason code from api/v1alpha1
	Message string
	// Inconclusive is true when the failure says nothing about the chart:
	// an outage or a timeout rather than an attack.
	Inconclusive bool
}

// Signature is one signature found for a digest, and what cryptography
// established about it.
type Signature struct {
	Layout Layout
	// Ref is the digest of the manifest that holds the signature.
	Ref string
	// Authority is the name of the policy authority whose key verified the
	// signature; empty when none did.
	Authority string
	// KeyID is the verifying key's ID when Authority is set.
	KeyID string
	// Signer, when set, identifies the signing key across authority kinds
	// (the sha256 of its PKIX encoding, as a key authority's KeyID): an
	// OpenPGP key whose KeyID is its fingerprint. Empty means KeyID.
	Signer string
	// Subjects are the digests the signed payload names. Only meaningful
	// when Authority is set: an unverified payload names nothing.
	Subjects []string
	// PredicateType is set for the signature of an in-toto attestation
	// (another predicate than cosign's signing one), which only `chartproof
	// verify-blob` reads as evidence: a chart's signatures never have it.
	PredicateType string
	// Malformed is true when the signature artifact could not be parsed at
	// all (as opposed to parsed and not verified).
	Malformed bool
	// Problem says why no authority verified it, when Authority is empty
	// and RootVerified is empty.
	Problem string
	// LogProblem says why no transparency log entry verified for a key
	// authority that requires the log (Authority set, Log empty).
	LogProblem string

	// Keyless facts. RootVerified names the keyless authorities whose
	// trusted root verified the signature: the certificate chains to one of
	// its certificate authorities at every verified signing time, the
	// signature is in one of its transparency logs (entry tied to this
	// signature, certificate and payload; inclusion proof against a signed
	// checkpoint, or a signed entry timestamp), a log or timestamp authority
	// of the root vouches for the time, and SCTs verify when the root lists
	// CT logs. Whether the certificate names an identity the authority
	// trusts is not established here: Evaluate judges Identity.
	RootVerified []string
	// Identity is what the verified certificate says about its subject;
	// set with RootVerified.
	Identity *CertIdentity
	// Log lists the verified entries of transparency logs of the trusted
	// root that record the signature: the keyless authority's root, or the
	// root of a key authority that requires the log.
	Log []LogEntry
	// SignedAt is the earliest verified signing time (a log's integrated
	// time or an RFC 3161 timestamp); zero when none was verified.
	SignedAt time.Time

	// X509 is set for a signature that carries a certificate, when the
	// policy has x509 authorities: what their PKIs established.
	X509 *X509Facts

	// Chain is the certificate chain a Notation authority verified the
	// signature with, leaf first, root last: revocations.certificates
	// apply to each of its certificates, as to an x509 authority's path.
	Chain []PathCert

	// Attestation is set for an in-toto attestation (Evidence.Attestations):
	// what its verified statement says. PredicateType is its type,
	// Subjects its sha256 subjects.
	Attestation *AttestationFacts

	// Provenance is set for a Helm provenance file a provenance authority's
	// key verified (LayoutHelmProvenance): what its signed text says. Its
	// subject is the chart layer's digest, not the manifest's.
	Provenance *ProvenanceFacts
}

// CertIdentity is the identity a verified Fulcio certificate names.
type CertIdentity struct {
	// Issuer is the OIDC issuer (extension 1.3.6.1.4.1.57264.1.8, or the
	// deprecated .1.1).
	Issuer string `json:"issuer"`
	// Subject is the Subject Alternative Name: a URI, an email address or
	// a Fulcio otherName username.
	Subject string `json:"subject"`
	// SubjectType is "uri", "email" or "otherName".
	SubjectType string `json:"subjectType,omitempty"`
	// Extensions are the other Fulcio extensions present, by the JSON name
	// of sigstore-go's certificate.Extensions (ExtensionNames).
	Extensions map[string]string `json:"extensions,omitempty"`
}

// String is "subject (issuer)".
func (c *CertIdentity) String() string {
	if c == nil {
		return ""
	}
	return c.Subject + " (" + c.Issuer + ")"
}

// typed is String with the kind of SAN: "subject (uri, issuer)", for
// refusals, where a subjectType may be what did not match.
func (c *CertIdentity) typed() string {
	if c == nil || c.SubjectType == "" {
		return c.String()
	}
	return c.Subject + " (" + c.SubjectType + ", " + c.Issuer + ")"
}

// LogEntry locates one transparency log entry.
type LogEntry struct {
	// LogID is the lowercase hex log ID (sha256 of the log's public key).
	LogID string `json:"logID"`
	// Index is the entry's index in the log.
	Index int64 `json:"index"`
}

// Reason is one failed check of a verdict.
type Reason struct {
	// Policy is set when a mandatory policy, not the one the release
	// names, failed this check (Combine).
	Policy   string `json:"policy,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
}

// Acceptance is one authority that counted towards the threshold.
type Acceptance struct {
	// Policy is set when the authority is a mandatory policy's, not the
	// named policy's (Combine).
	Policy    string `json:"policy,omitempty"`
	Authority string `json:"authority"`
	KeyID     string `json:"keyID,omitempty"`
	Layout    Layout `json:"layout"`
	Signature string `json:"signature"`
	// Identity is set for a keyless authority: the signer the certificate
	// names. Log and SignedAt are set for a keyless authority and for a key
	// authority that requires the log: the first verified transparency log
	// entry of the signature, and the verified signing time.
	Identity *CertIdentity `json:"identity,omitempty"`
	Log      *LogEntry     `json:"log,omitempty"`
	SignedAt *time.Time    `json:"signedAt,omitempty"`
	// PredicateType is set when what was signed is an in-toto attestation
	// of that predicate type (verify-blob only).
	PredicateType string `json:"predicateType,omitempty"`
	// Revocation is set for an x509 authority: the revocation status of
	// the path ("Good", or "Unknown (SoftFail): why").
	Revocation string `json:"revocation,omitempty"`
}

// describe names the authority and, for a keyless one, the signer the
// certificate names, its transparency log entry and the signing time.
func (a Acceptance) describe() string {
	if a.Identity == nil {
		return a.Authority
	}
	d := fmt.Sprintf("%s (signer %s", a.Authority, a.Identity)
	if a.Log != nil {
		d += fmt.Sprintf(", log index %d", a.Log.Index)
	}
	if a.SignedAt != nil {
		d += ", signed " + a.SignedAt.UTC().Format(time.RFC3339)
	}
	return d + ")"
}

// Verdict is the decision on one digest under one policy. The zero value is
// a denial; only Evaluate makes an allow.
type Verdict struct {
	passed bool
	audit  bool

	// Policy is the policy that decided: the one the release names.
	Policy Ref
	// Mandatory are the mandatory ClusterTrustPolicies that judged the
	// release too (Combine).
	Mandatory []Ref
	// Mode is the policy's mode.
	Mode chartproofv1.Mode
	// Digest is the digest decided on.
	Digest string
	// Reasons lists every failed check; empty when the verdict passed.
	Reasons []Reason
	// Accepted lists the authorities that counted, one entry each.
	Accepted []Acceptance
	// Attestations lists the attestation requirements that held, in the
	// policy's order; all of them when the verdict passed.
	Attestations []HeldAttestation
	// Inconclusive is true when the denial comes from evidence that could
	// not be gathered (registry down, timeout), not from a failed check.
	Inconclusive bool
}

// Passed reports whether every check passed.
func (v Verdict) Passed() bool { return v.passed }

// Allowed reports whether the chart may be installed: it passed, or it
// failed only signature checks under a policy in Audit mode. Integrity
// failures and inconclusive outcomes are never allowed, in any mode.
func (v Verdict) Allowed() bool { return v.passed || v.audit }

// Audited reports whether the chart is allowed only because the policy is
// in Audit mode.
func (v Verdict) Audited() bool { return !v.passed && v.audit }

// Code is the reason code that sums the verdict up: Verified when it
// passed, otherwise the first reason's code.
func (v Verdict) Code() string {
	if v.passed {
		return chartproofv1.ReasonVerified
	}
	if len(v.Reasons) == 0 {
		return chartproofv1.ReasonNoSignature // the zero Verdict
	}
	return v.Reasons[0].Code
}

// Message is a one-line summary for conditions and events.
func (v Verdict) Message() string {
	if v.passed {
		var names []string
		by := map[string][]string{} // a mandatory policy's authorities
		for _, a := range v.Accepted {
			if a.Policy == "" {
				names = append(names, a.describe())
			} else {
				by[a.Policy] = append(by[a.Policy], a.describe())
			}
		}
		msg := fmt.Sprintf("%s verified under %s by %s", v.Digest, v.Policy, strings.Join(names, ", "))
		for _, m := range v.Mandatory {
			msg += fmt.Sprintf("; under %s by %s", m, strings.Join(by[m.String()], ", "))
		}
		if len(v.Attestations) > 0 {
			held := make([]string, 0, len(v.Attestations))
			for _, a := range v.Attestations {
				held = append(held, fmt.Sprintf("%s (%s) by %s", a.Name, a.PredicateType, a.describe()))
			}
			msg += "; attestations held: " + strings.Join(held, ", ")
		}
		return msg
	}
	if len(v.Reasons) == 0 {
		return "not verified"
	}
	msgs := make([]string, 0, len(v.Reasons))
	for _, r := range v.Reasons {
		msgs = append(msgs, r.Message)
	}
	return strings.Join(msgs, "; ")
}

// Evaluate decides whether the evidence satisfies the policy. It reads the
// checks in a fixed order and stops at the first stage that fails, so the
// first reason is the most fundamental one.
func Evaluate(p *Policy, ev Evidence) Verdict {
	if p == nil {
		return Verdict{Digest: ev.Digest, Reasons: []Reason{{
			Code: chartproofv1.ReasonPolicyNotFound, Message: "no policy",
		}}}
	}
	v := Verdict{Policy: p.Ref, Mode: p.Mode, Digest: ev.Digest}
	deny := func(r Reason) Verdict {
		v.Reasons = append(v.Reasons, r)
		v.Accepted, v.Attestations = nil, nil // a denial accepts nobody
		return v
	}

	// 1. Scope: the policy must cover the repository. A reference that did
	// not even parse has no repository to scope; its failure says why.
	if ev.Repository == "" && ev.Failure != nil {
		return deny(Reason{Code: ev.Failure.Code, Message: ev.Failure.Message})
	}
	if !p.Covers(ev.Repository) {
		return deny(Reason{
			Code:     chartproofv1.ReasonNoPolicyMatch,
			Message:  fmt.Sprintf("repository %s is not covered by %s", ev.Repository, p.Ref),
			Expected: strings.Join(p.Repositories, " | "),
			Found:    ev.Repository,
		})
	}

	// 1b. A signature repository other than the chart's must be one the
	// policy names (THREATS REG-09).
	if ev.SignatureRepository != "" && !p.AllowsSignatureRepository(ev.SignatureRepository) {
		return deny(Reason{
			Code:     chartproofv1.ReasonSignatureRepositoryNotAllowed,
			Message:  fmt.Sprintf("signature repository %s is not allowed by %s", ev.SignatureRepository, p.Ref),
			Expected: strings.Join(p.SignatureRepositories, " | "),
			Found:    ev.SignatureRepository,
		})
	}

	// 2. Evidence gathering: an outage or a lying registry decides nothing
	// in the chart's favour.
	if f := ev.Failure; f != nil {
		v.Inconclusive = f.Inconclusive
		return deny(Reason{Code: f.Code, Message: f.Message})
	}

	// 3. Digest pinning: everything below is keyed by one canonical digest.
	if !CanonicalDigest(ev.Digest) {
		return deny(Reason{
			Code:     chartproofv1.ReasonDigestMismatch,
			Message:  fmt.Sprintf("digest %q is not a canonical sha256 digest", ev.Digest),
			Expected: "sha256:<64 lowercase hex>",
			Found:    ev.Digest,
		})
	}

	// 3b. A denied digest is refused whatever signs it, in Audit mode too.
	if p.Revoked.denies(ev.Digest) {
		return deny(Reason{
			Code:     chartproofv1.ReasonDigestDenied,
			Message:  fmt.Sprintf("%s is denied by the revocations of %s", ev.Digest, p.Ref),
			Expected: "a digest the policy does not deny",
			Found:    ev.Digest,
		})
	}

	// 3c. Freshness: a chart below the minimum version, or older than the
	// newest this release installed, whatever signs it.
	if r := p.judgeFreshness(ev); r != nil {
		return deny(*r)
	}

	// 4-6. Signatures, key identity and binding, threshold.
	v = p.judgeSignatures(v, ev)
	signed := len(v.Reasons) == 0

	// 6b. Attestations: every one the policy requires holds. Judged once
	// the signatures count, so a refused signature stays the reason.
	if signed && len(p.Attestations) > 0 {
		v = p.judgeAttestations(v, ev)
		if signed = len(v.Reasons) == 0; !signed {
			v.Accepted, v.Attestations = nil, nil
		}
	}

	// 7. Content: the bytes to install were read by this digest and passed.
	// An integrity failure is never waived, not even in Audit mode; a read
	// that could not be made (outage, timeout) is inconclusive.
	if ev.Content != nil {
		v.Inconclusive = ev.Content.Inconclusive
		return deny(Reason{Code: ev.Content.Code, Message: ev.Content.Message})
	}
	if !signed {
		// Audit mode waives signature failures only, and says so.
		v.audit = p.Mode == chartproofv1.ModeAudit
		return v
	}
	v.passed = true
	return v
}

// judgeSignatures counts the distinct authorities whose signature binds the
// digest, each backed by a distinct signer. When there are too few, it says
// why, most specific reason first.
//
// A signature is a candidate for an authority when the authority's trust
// material verified it (its key; for a keyless authority, its trusted root)
// and, for a keyless authority, the certificate names one of its
// identities. A candidate counts only when the payload names the digest.
// The signer is the key (KeyID) or the certificate identity (issuer and
// subject): one signer counts for at most one authority however many
// signatures it made and however many authorities would accept it, so two
// authorities whose identities overlap cannot be satisfied by one CI job.
// The count is the largest such one-to-one assignment of authorities to
// signers.
func (p *Policy) judgeSignatures(v Verdict, ev Evidence) Verdict {
	if len(ev.Signatures) == 0 {
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonNoSignature,
			Message:  fmt.Sprintf("no signature found for %s@%s", ev.Repository, ev.Digest),
			Expected: fmt.Sprintf("at least %d signature(s)", p.Threshold),
			Found:    "none",
		})
		return v
	}
	byName := map[string]Authority{}
	for _, a := range p.Authorities {
		byName[a.Name] = a
	}
	now := ev.Now
	if now.IsZero() {
		now = time.Now()
	}
	var (
		cands        []candidate
		otherSubject []string
		mismatched   []string // identities of root-verified certificates no authority accepts
		rejected     []string // why x509 authorities refused the certificate paths
		pkiMismatch  bool     // an x509 authority's PKI verified a certificate naming another signer
		unlogged     []string // why key-verified signatures lack the log entry their authority requires
		outside      []string // signing times outside a key's validity window
		provMismatch []string // verified provenance files describing another chart
		revoked      []string // why signatures that would count are by revoked signers
		certRevoked  []string // why x509 paths that would count are revoked (CRL, OCSP)
		revUnknown   []string // why x509 paths that would count have an unknown revocation status
		aged         []string // why signatures that would count are too old
		verified     int
		malformed    int
		examined     int
	)
	for i, s := range ev.Signatures {
		if examined == MaxSignatures {
			break // the collector caps too; this keeps Evaluate bounded on its own
		}
		examined++
		if s.Malformed {
			malformed++
			continue
		}
		var names []string // authorities that accept this signature's signer
		if a, ok := byName[s.Authority]; ok && s.Authority != "" && a.Keyless == nil && a.reads(s.Layout) {
			if a.Log != nil && len(s.Log) == 0 {
				// requireTransparencyLog: the key signed it, no log records it.
				unlogged = append(unlogged, s.LogProblem)
				continue
			}
			if (!a.ValidFrom.IsZero() || !a.ValidUntil.IsZero()) && (s.SignedAt.IsZero() || !a.validAt(s.SignedAt)) {
				outside = append(outside, fmt.Sprintf("%s signed at %s", a.Name, s.SignedAt.UTC().Format(time.RFC3339)))
				continue
			}
			names = append(names, a.Name)
		}
		rootOK := false
		for _, n := range s.RootVerified {
			a, ok := byName[n]
			if !ok || a.Keyless == nil {
				continue
			}
			rootOK = true
			if a.Matches(s.Identity) {
				names = append(names, a.Name)
			}
		}
		pkiOK := false
		if s.X509 != nil {
			for _, n := range s.X509.Authorities {
				if a, ok := byName[n]; ok && a.X509 != nil {
					pkiOK = true
					if a.matchesX509(s.X509.SANs) {
						names = append(names, a.Name)
					}
				}
			}
		}
		if len(names) == 0 {
			switch {
			case rootOK:
				mismatched = append(mismatched, s.Identity.typed())
			case pkiOK:
				pkiMismatch = true
				mismatched = append(mismatched, strings.Join(s.X509.SANs, ", ")+" ("+s.X509.Path[0].Subject+")")
			case s.X509 != nil && s.X509.Problem != "":
				rejected = append(rejected, s.Ref+": "+s.X509.Problem)
			}
			continue
		}
		verified++
		subject := ev.Digest
		if s.Layout == LayoutHelmProvenance {
			// A provenance file vouches for the chart layer of the
			// manifest being decided, which the manifest's digest pins.
			subject = ev.ChartLayer
		}
		if subject == "" || !contains(s.Subjects, subject) {
			otherSubject = append(otherSubject, strings.Join(s.Subjects, ","))
			continue
		}
		if s.Layout == LayoutHelmProvenance {
			if why := provenanceMismatch(s.Provenance, ev); why != "" {
				provMismatch = append(provMismatch, s.Ref+": "+why)
				continue
			}
		}
		if why := p.Revoked.signer(s); why != "" {
			revoked = append(revoked, s.Ref+": "+why)
			continue
		}
		if why := p.tooOld(s, now); why != "" {
			aged = append(aged, s.Ref+": "+why)
			continue
		}
		// What CRLs and OCSP responders say of an x509 path is judged
		// last: a signer the policy revokes, or a signature too old, is
		// refused as such whatever they could, or could not, say.
		if names = s.X509.withKnownStatus(names, byName, &certRevoked, &revUnknown, s.Ref); len(names) == 0 {
			continue
		}
		signer := "key:" + s.KeyID
		if s.Signer != "" {
			signer = "key:" + s.Signer
		}
		if s.Identity != nil && s.Authority == "" {
			signer = "cert:" + s.Identity.Issuer + "\x00" + s.Identity.Subject
		}
		for _, n := range names {
			cands = append(cands, candidate{authority: n, signer: signer, sig: i})
		}
	}
	for _, c := range assign(cands) {
		s := ev.Signatures[c.sig]
		acc := Acceptance{Authority: c.authority, Layout: s.Layout, Signature: s.Ref, PredicateType: s.PredicateType}
		a := byName[c.authority]
		switch {
		case a.Keyless != nil:
			acc.Identity = s.Identity
		case a.Notation != nil:
			acc.KeyID, acc.Identity = s.KeyID, s.Identity // the leaf certificate and its subject
		case a.X509 != nil:
			acc.KeyID = s.KeyID // the leaf's key
			acc.Identity = &CertIdentity{Subject: a.matchingSAN(s.X509.SANs), Issuer: s.X509.Path[1].Subject}
			acc.Revocation = RevocationGood
			if st := s.X509.revocationOf(c.authority); st.Status != RevocationGood {
				acc.Revocation = "Unknown (SoftFail): " + st.Detail
			}
		default:
			acc.KeyID = s.KeyID
		}
		if a.Keyless != nil || a.Log != nil || (a.X509 != nil && a.X509.Times != nil) {
			if len(s.Log) > 0 {
				l := s.Log[0]
				acc.Log = &l
			}
			if !s.SignedAt.IsZero() {
				t := s.SignedAt
				acc.SignedAt = &t
			}
		}
		v.Accepted = append(v.Accepted, acc)
	}
	sort.Slice(v.Accepted, func(i, j int) bool { return v.Accepted[i].Authority < v.Accepted[j].Authority })
	counted := len(v.Accepted)
	if counted >= p.Threshold {
		return v
	}
	expected := fmt.Sprintf("%d distinct authorities of [%s] signing %s", p.Threshold, p.authorityNames(), ev.Digest)
	found := fmt.Sprintf("%d", counted)
	switch {
	case len(certRevoked) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code: chartproofv1.ReasonCertificateRevoked,
			Message: fmt.Sprintf("%d signature(s) for %s carry a certificate path a CRL or OCSP responder says is revoked; %d of the required %d authorities count",
				len(certRevoked), ev.Digest, counted, p.Threshold),
			Expected: expected,
			Found:    strings.Join(certRevoked, "; "),
		})
	case len(revoked) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code: chartproofv1.ReasonSignerRevoked,
			Message: fmt.Sprintf("%d signature(s) for %s are by signers %s revokes; %d of the required %d authorities count",
				len(revoked), ev.Digest, p.Ref, counted, p.Threshold),
			Expected: expected,
			Found:    strings.Join(revoked, "; "),
		})
	case len(aged) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code: chartproofv1.ReasonSignatureTooOld,
			Message: fmt.Sprintf("%d signature(s) for %s are older than %s's maxSignatureAge %s (or have no verified signing time); %d of the required %d authorities count",
				len(aged), ev.Digest, p.Ref, p.MaxSignatureAge, counted, p.Threshold),
			Expected: fmt.Sprintf("signatures made within %s", p.MaxSignatureAge),
			Found:    strings.Join(aged, "; "),
		})
	case len(revUnknown) > 0:
		v.Inconclusive = true
		v.Reasons = append(v.Reasons, Reason{
			Code: chartproofv1.ReasonRevocationUnknown,
			Message: fmt.Sprintf("the revocation status of the certificate path of %d signature(s) for %s could not be established; %d of the required %d authorities count",
				len(revUnknown), ev.Digest, counted, p.Threshold),
			Expected: "an answer from the OCSP responder or a current CRL of the issuer for every certificate that names one (or revocation mode SoftFail)",
			Found:    strings.Join(revUnknown, "; "),
		})
	case len(provMismatch) > 0 && counted == 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonProvenanceMismatch,
			Message:  fmt.Sprintf("a Helm provenance file signed by a trusted key describes another chart than %s@%s", ev.Repository, ev.Digest),
			Expected: fmt.Sprintf("one file entry %s-<version>.tgz, the chart of Chart.yaml", path.Base(ev.Repository)),
			Found:    strings.Join(provMismatch, "; "),
		})
	case len(otherSubject) > 0 && counted == 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonSubjectMismatch,
			Message:  fmt.Sprintf("a trusted signature names another artifact, not %s", ev.Digest),
			Expected: ev.Digest,
			Found:    strings.Join(otherSubject, " "),
		})
	case counted > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonThresholdNotMet,
			Message:  fmt.Sprintf("%d of the required %d authorities signed %s (each signer counts once)", counted, p.Threshold, ev.Digest),
			Expected: expected,
			Found:    found,
		})
	case len(outside) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonKeyNotValidAtSigningTime,
			Message:  fmt.Sprintf("%d signature(s) for %s verify under a key, but were made outside the key's validity window", len(outside), ev.Digest),
			Expected: p.keyWindows(),
			Found:    strings.Join(outside, "; "),
		})
	case len(unlogged) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonNotLogged,
			Message:  fmt.Sprintf("%d signature(s) for %s verify under a key whose authority requires the transparency log, but no log of its trusted root records them", len(unlogged), ev.Digest),
			Expected: "an entry in a transparency log of the authority's trusted root",
			Found:    strings.Join(unlogged, "; "),
		})
	case len(mismatched) > 0:
		kind, under := "keyless", "trusted root"
		if pkiMismatch {
			kind, under = "certificate", "trusted root or an x509 authority's PKI"
		}
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonIdentityMismatch,
			Message:  fmt.Sprintf("%d %s signature(s) for %s verify under a %s, but no certificate names an identity of %s", len(mismatched), kind, ev.Digest, under, p.Ref),
			Expected: p.identities(),
			Found:    strings.Join(mismatched, "; "),
		})
	case len(rejected) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonCertificateRejected,
			Message:  fmt.Sprintf("%d signature(s) for %s carry a certificate of an x509 authority's PKI whose path is refused", len(rejected), ev.Digest),
			Expected: "a code-signing certificate whose path passes every check (docs/security.md, THREATS PKI-*)",
			Found:    strings.Join(rejected, "; "),
		})
	case verified == 0 && malformed == examined:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonMalformedSignature,
			Message:  fmt.Sprintf("all %d signature(s) found for %s are malformed", malformed, ev.Digest),
			Expected: expected,
			Found:    problems(ev.Signatures),
		})
	default:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonUntrustedSigner,
			Message:  fmt.Sprintf("%d signature(s) found for %s, none verifies under an authority of %s", len(ev.Signatures), ev.Digest, p.Ref),
			Expected: expected,
			Found:    problems(ev.Signatures),
		})
	}
	v.Accepted = nil // a denial accepts nobody
	return v
}

// MaxSignatures bounds the signatures Evaluate examines; it equals
// limits.MaxSignatures, which the collector applies (this package imports
// nothing of ours but the API types; internal/verify.TestCapsAgree checks).
const MaxSignatures = 512

// candidate says a signature of signer may count for authority.
type candidate struct {
	authority, signer string
	sig               int // index in Evidence.Signatures
}

// assign picks the largest set of candidates in which every authority and
// every signer appears at most once (a maximum bipartite matching, by
// augmenting paths; there are at most 32 authorities). Authorities are
// tried in order of first appearance, so the result is deterministic.
func assign(cands []candidate) []candidate {
	var authorities []string
	edges := map[string][]candidate{}
	for _, c := range cands {
		if _, ok := edges[c.authority]; !ok {
			authorities = append(authorities, c.authority)
		}
		dup := false
		for _, e := range edges[c.authority] {
			dup = dup || e.signer == c.signer
		}
		if !dup {
			edges[c.authority] = append(edges[c.authority], c)
		}
	}
	owner := map[string]candidate{} // signer -> the candidate it is assigned through
	var try func(a string, seen map[string]bool) bool
	try = func(a string, seen map[string]bool) bool {
		for _, e := range edges[a] {
			if seen[e.signer] {
				continue
			}
			seen[e.signer] = true
			prev, taken := owner[e.signer]
			if !taken || try(prev.authority, seen) {
				owner[e.signer] = e
				return true
			}
		}
		return false
	}
	for _, a := range authorities {
		try(a, map[string]bool{})
	}
	out := make([]candidate, 0, len(owner))
	for _, c := range owner {
		out = append(out, c)
	}
	return out
}

// AllowsSignatureRepository reports whether a release may read its
// signatures from repo (spec.signatureRepositories).
func (p *Policy) AllowsSignatureRepository(repo string) bool {
	for _, g := range p.SignatureRepositories {
		if MatchRepository(g, repo) {
			return true
		}
	}
	return false
}

// Covers reports whether the policy's scope includes repo.
func (p *Policy) Covers(repo string) bool {
	for _, g := range p.Repositories {
		if MatchRepository(g, repo) {
			return true
		}
	}
	return false
}

func (p *Policy) authorityNames() string {
	names := make([]string, 0, len(p.Authorities))
	for _, a := range p.Authorities {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

// identities lists every keyless and x509 authority's identities, for
// reasons.
func (p *Policy) identities() string {
	var out []string
	for _, a := range p.Authorities {
		switch {
		case a.Keyless != nil:
			for _, id := range a.Keyless.Identities {
				out = append(out, a.Name+": "+id.String())
			}
		case a.X509 != nil:
			for _, id := range a.X509.Identities {
				out = append(out, a.Name+": "+id)
			}
		}
	}
	return strings.Join(out, "; ")
}

// keyWindows describes the validity windows of the key authorities.
func (p *Policy) keyWindows() string {
	var out []string
	for _, a := range p.Authorities {
		if a.ValidFrom.IsZero() && a.ValidUntil.IsZero() {
			continue
		}
		end := "no end"
		if !a.ValidUntil.IsZero() {
			end = a.ValidUntil.Format(time.RFC3339)
		}
		out = append(out, fmt.Sprintf("%s: %s to %s", a.Name, a.ValidFrom.Format(time.RFC3339), end))
	}
	return strings.Join(out, "; ")
}

func problems(sigs []Signature) string {
	var out []string
	for _, s := range sigs {
		if s.Authority == "" && len(s.RootVerified) == 0 && s.Problem != "" {
			out = append(out, fmt.Sprintf("%s %s: %s", s.Layout, s.Ref, s.Problem))
		}
	}
	return strings.Join(out, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CanonicalDigest reports whether d is "sha256:" followed by exactly 64
// lowercase hex characters: the only digest form chartproof compares.
func CanonicalDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
