package policy

import (
	"fmt"
	"sort"
	"strings"

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
)

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
	// Content is the result of reading the chart archive by Digest, when it
	// was read (before an install). Nil means it was not read.
	Content *Failure
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
	// Subjects are the digests the signed payload names. Only meaningful
	// when Authority is set: an unverified payload names nothing.
	Subjects []string
	// Malformed is true when the signature artifact could not be parsed at
	// all (as opposed to parsed and not verified).
	Malformed bool
	// Problem says why no authority verified it, when Authority is empty.
	Problem string
}

// Reason is one failed check of a verdict.
type Reason struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
}

// Acceptance is one authority that counted towards the threshold.
type Acceptance struct {
	Authority string `json:"authority"`
	KeyID     string `json:"keyID,omitempty"`
	Layout    Layout `json:"layout"`
	Signature string `json:"signature"`
}

// Verdict is the decision on one digest under one policy. The zero value is
// a denial; only Evaluate makes an allow.
type Verdict struct {
	passed bool
	audit  bool

	// Policy is the policy that decided.
	Policy Ref
	// Mode is the policy's mode.
	Mode chartproofv1.Mode
	// Digest is the digest decided on.
	Digest string
	// Reasons lists every failed check; empty when the verdict passed.
	Reasons []Reason
	// Accepted lists the authorities that counted, one entry each.
	Accepted []Acceptance
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
		names := make([]string, 0, len(v.Accepted))
		for _, a := range v.Accepted {
			names = append(names, a.Authority)
		}
		return fmt.Sprintf("%s verified under %s by %s", v.Digest, v.Policy, strings.Join(names, ", "))
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
		v.Accepted = nil // a denial accepts nobody
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

	// 4-6. Signatures, key identity and binding, threshold.
	v = p.judgeSignatures(v, ev)
	signed := len(v.Reasons) == 0

	// 7. Content: the bytes to install were read by this digest and passed.
	// An integrity failure is never waived, not even in Audit mode.
	if ev.Content != nil {
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
// digest. When there are too few, it says why, most specific reason first.
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
	trusted := map[string]bool{}
	for _, a := range p.Authorities {
		trusted[a.Name] = true
	}
	var (
		counted      = map[string]bool{}
		otherSubject []string
		verified     int
		malformed    int
	)
	for _, s := range ev.Signatures {
		switch {
		case s.Malformed:
			malformed++
			continue
		case s.Authority == "" || !trusted[s.Authority]:
			continue
		}
		verified++
		if !contains(s.Subjects, ev.Digest) {
			otherSubject = append(otherSubject, strings.Join(s.Subjects, ","))
			continue
		}
		if counted[s.Authority] {
			continue // one authority counts once, however many signatures
		}
		counted[s.Authority] = true
		v.Accepted = append(v.Accepted, Acceptance{
			Authority: s.Authority, KeyID: s.KeyID, Layout: s.Layout, Signature: s.Ref,
		})
	}
	sort.Slice(v.Accepted, func(i, j int) bool { return v.Accepted[i].Authority < v.Accepted[j].Authority })
	if len(counted) >= p.Threshold {
		return v
	}
	expected := fmt.Sprintf("%d distinct authorities of [%s] signing %s", p.Threshold, p.authorityNames(), ev.Digest)
	found := fmt.Sprintf("%d", len(counted))
	switch {
	case len(otherSubject) > 0 && len(counted) == 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonSubjectMismatch,
			Message:  fmt.Sprintf("a trusted signature names another artifact, not %s", ev.Digest),
			Expected: ev.Digest,
			Found:    strings.Join(otherSubject, " "),
		})
	case len(counted) > 0:
		v.Reasons = append(v.Reasons, Reason{
			Code:     chartproofv1.ReasonThresholdNotMet,
			Message:  fmt.Sprintf("%d of the required %d authorities signed %s", len(counted), p.Threshold, ev.Digest),
			Expected: expected,
			Found:    found,
		})
	case verified == 0 && malformed == len(ev.Signatures):
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

func problems(sigs []Signature) string {
	var out []string
	for _, s := range sigs {
		if s.Authority == "" && s.Problem != "" {
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
