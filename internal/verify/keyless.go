package verify

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/verify/trustedroot"
)

// rootVerifier checks keyless signatures against one trusted root, on
// behalf of every keyless authority that names it.
type rootVerifier struct {
	key      string // RootDigest, or "" for the embedded public-good root
	source   string
	names    []string
	logs     map[string]*root.TransparencyLog
	verifier *sgverify.Verifier
}

// addKeyless adds a keyless authority: to the verifier of its trusted root
// when another authority already names the same root, or to a new one. The
// verifier requires, for every signature: an entry in a transparency log of
// the root (Rekor v1 with a signed entry timestamp or an inclusion proof,
// Rekor v2 with an inclusion proof), an observer timestamp (the log's
// integrated time, or an RFC 3161 timestamp from a timestamp authority of
// the root, as Rekor v2 needs), the certificate chain valid at every such
// time, and an SCT when the root lists CT logs.
func (v *Verifier) addKeyless(a policy.Authority) error {
	k := a.Keyless
	for i := range v.roots {
		if v.roots[i].key == k.RootDigest {
			v.roots[i].names = append(v.roots[i].names, a.Name)
			return nil
		}
	}
	tr, source, err := material(k.TrustRoot)
	if err != nil {
		return err
	}
	opts := []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1)}
	if len(tr.CTLogs()) > 0 {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	sv, err := sgverify.NewVerifier(tr, opts...)
	if err != nil {
		return fmt.Errorf("trusted root %s: %w", source, err)
	}
	v.roots = append(v.roots, rootVerifier{key: k.RootDigest, source: source, names: []string{a.Name}, logs: tr.RekorLogs(), verifier: sv})
	return nil
}

// material is a compiled trusted root's parsed form and its source, the
// embedded public-good root when the policy names none.
func material(tr policy.TrustRoot) (*root.TrustedRoot, string, error) {
	if tr.TrustedRoot != nil {
		return tr.TrustedRoot, tr.RootSource, nil
	}
	pg, err := trustedroot.PublicGood()
	return pg, trustedroot.PublicGoodSource, err
}

// keyless checks a certificate-signed bundle against every trusted root:
// a Sigstore bundle, or a legacy layer made into one. The identity is not
// checked here (WithoutIdentitiesUnsafe): it is reported, with the signing
// time and the log entries, for internal/policy to judge against each
// authority's identities. what names the signature in a Problem.
func (v *Verifier) keyless(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption, subject, what string, use bundleUse) (policy.Signature, bool) {
	var (
		sig      policy.Signature
		problems []string
	)
	for _, r := range v.roots {
		res, err := r.verifier.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithoutIdentitiesUnsafe()))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", r.source, err))
			continue
		}
		if sig.Identity == nil {
			st, keep, problem := subjectsOf(res, subject, use)
			switch {
			case !keep:
				return policy.Signature{}, false
			case problem != "":
				return malformed(problem), true
			}
			id, err := certIdentity(b, res)
			if err != nil {
				return malformed(err.Error()), true
			}
			sig.Subjects, sig.Identity, sig.PredicateType, sig.Attestation = st.subjects, id, st.predicateType, st.facts
			sig.SignedAt = earliest(res.VerifiedTimestamps)
		}
		sig.RootVerified = append(sig.RootVerified, r.names...)
		sig.Log = appendLogEntries(sig.Log, b, r.logs)
	}
	if len(sig.RootVerified) == 0 {
		if len(v.roots) == 0 {
			return policy.Signature{Problem: what + ", but the policy has no keyless authority"}, true
		}
		return policy.Signature{Problem: what + " does not verify under any trusted root: " + strings.Join(problems, "; ")}, true
	}
	return sig, true
}

// certIdentity reads the identity of the verified leaf certificate from
// sigstore-go's certificate summary.
func certIdentity(b *bundle.Bundle, res *sgverify.VerificationResult) (*policy.CertIdentity, error) {
	if res.Signature == nil || res.Signature.Certificate == nil {
		return nil, fmt.Errorf("bundle: verified without a certificate summary")
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return identityOf(vc.Certificate(), *res.Signature.Certificate)
}

// identityOf is the identity a leaf certificate names, from sigstore-go's
// summary of it.
func identityOf(leaf *x509.Certificate, sum certificate.Summary) (*policy.CertIdentity, error) {
	raw, err := json.Marshal(sum.Extensions)
	if err != nil {
		return nil, fmt.Errorf("bundle: certificate extensions: %w", err)
	}
	exts := map[string]string{}
	if err := json.Unmarshal(raw, &exts); err != nil {
		return nil, fmt.Errorf("bundle: certificate extensions: %w", err)
	}
	delete(exts, "issuer")
	id := &policy.CertIdentity{Issuer: sum.Extensions.Issuer, Subject: sum.SubjectAlternativeName, Extensions: exts}
	switch {
	case len(leaf.URIs) > 0:
		id.SubjectType = "uri"
	case len(leaf.EmailAddresses) > 0:
		id.SubjectType = "email"
	default:
		id.SubjectType = "otherName"
	}
	return id, nil
}

// mayHaveSigned reports whether the identity the bundle's certificate names,
// read before anything is verified, matches an identity of a keyless
// authority: a hint for the order of checks (Prepared.Likely), never trust.
func (v *Verifier) mayHaveSigned(b *bundle.Bundle) bool {
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return false
	}
	sum, err := certificate.SummarizeCertificate(vc.Certificate())
	if err != nil {
		return false
	}
	id, err := identityOf(vc.Certificate(), sum)
	if err != nil {
		return false
	}
	for _, a := range v.keylessAuthorities {
		if a.Matches(id) {
			return true
		}
	}
	return false
}

// appendLogEntries adds the bundle's entries that belong to a log of the
// trusted root and whose signed entry timestamp (when present) verifies,
// the entries sigstore-go counted.
func appendLogEntries(out []policy.LogEntry, b *bundle.Bundle, logs map[string]*root.TransparencyLog) []policy.LogEntry {
	entries, err := b.TlogEntries()
	if err != nil {
		return out
	}
	for _, e := range entries {
		id := hex.EncodeToString([]byte(e.LogKeyID()))
		if _, ok := logs[id]; !ok {
			continue
		}
		if e.HasInclusionPromise() && tlog.VerifySET(e, logs) != nil {
			continue
		}
		le := policy.LogEntry{LogID: id, Index: e.LogIndex()}
		dup := false
		for _, x := range out {
			dup = dup || x == le
		}
		if !dup {
			out = append(out, le)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].LogID != out[j].LogID {
			return out[i].LogID < out[j].LogID
		}
		return out[i].Index < out[j].Index
	})
	return out
}
