package verify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/chartproof/chartproof/internal/pki"
	"github.com/chartproof/chartproof/internal/policy"
)

// x509Authority checks signatures that carry a certificate against one
// x509 authority's PKI.
type x509Authority struct {
	name string
	pki  *policy.X509
	// times is the trusted root whose logs and timestamp authorities vouch
	// for signing times; nil judges the path now.
	times  *root.TrustedRoot
	source string
}

// strictCA is an x509 authority's PKI as sigstore-go sees a certificate
// authority: it validates the leaf's path with internal/pki at each time
// sigstore-go verified (or now), and remembers the path, or why it refused
// one. One is made per verification: it holds the intermediates the
// signature carries.
type strictCA struct {
	roots, intermediates []*x509.Certificate
	path                 []*x509.Certificate
	refused              error // a *pki.Error, when a check refused the path
}

func (c *strictCA) Verify(leaf *x509.Certificate, at time.Time) ([][]*x509.Certificate, error) {
	path, err := pki.VerifyCodeSigning(leaf, c.intermediates, c.roots, at)
	if err != nil {
		var perr *pki.Error
		if errors.As(err, &perr) {
			c.refused = err
		}
		return nil, err
	}
	c.path = path
	return [][]*x509.Certificate{path}, nil
}

// pkiMaterial is the trusted material of one x509 verification: the
// authority's PKI as the only certificate authority, and the logs and
// timestamp authorities of its trusted root (its certificate authorities
// and CT logs play no part).
type pkiMaterial struct {
	root.BaseTrustedMaterial
	ca    *strictCA
	times *root.TrustedRoot
}

func (m *pkiMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{m.ca}
}

func (m *pkiMaterial) RekorLogs() map[string]*root.TransparencyLog {
	if m.times == nil {
		return map[string]*root.TransparencyLog{}
	}
	return m.times.RekorLogs()
}

func (m *pkiMaterial) TimestampingAuthorities() []root.TimestampingAuthority {
	if m.times == nil {
		return nil
	}
	return m.times.TimestampingAuthorities()
}

func newX509Authority(a policy.Authority) x509Authority {
	x := x509Authority{name: a.Name, pki: a.X509}
	if a.X509.Times != nil {
		x.times, x.source = a.X509.Times.TrustedRoot, a.X509.Times.RootSource
	}
	return x
}

// verify checks b under the authority's PKI. With a trusted root, the
// signing time is a log's integrated time (with an entry of one of its logs
// tied to this signature) or else a timestamp authority's; without one, the
// path is judged now. chain is what the signature carries above its leaf:
// candidates for the path, never trust. It returns the verification result
// and the validated path, or why not: refused is a check's refusal of a
// path of this PKI, err anything else.
func (x x509Authority) verify(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption, chain []*x509.Certificate) (*sgverify.VerificationResult, []*x509.Certificate, error, error) {
	var inters []*x509.Certificate
	inters = append(inters, x.pki.Intermediates...)
	for _, c := range chain {
		if c.CheckSignatureFrom(c) != nil { // a root the signature carries adds nothing
			inters = append(inters, c)
		}
	}
	var attempts [][]sgverify.VerifierOption
	switch {
	case x.times == nil:
		attempts = append(attempts, []sgverify.VerifierOption{sgverify.WithCurrentTime()})
	default:
		if len(x.times.RekorLogs()) > 0 {
			attempts = append(attempts, []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1)})
		}
		if len(x.times.TimestampingAuthorities()) > 0 {
			attempts = append(attempts, []sgverify.VerifierOption{sgverify.WithObserverTimestamps(1)})
		}
	}
	if len(attempts) == 0 { // compileX509 refuses such a root; never verify without a time
		return nil, nil, nil, fmt.Errorf("trusted root %s has neither a transparency log nor a timestamp authority", x.source)
	}
	var errs []error
	for _, opts := range attempts {
		ca := &strictCA{roots: x.pki.Roots, intermediates: inters}
		v, err := sgverify.NewVerifier(&pkiMaterial{ca: ca, times: x.times}, opts...)
		if err != nil {
			return nil, nil, nil, err
		}
		res, err := v.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithoutIdentitiesUnsafe()))
		if err == nil {
			return res, ca.path, nil, nil
		}
		if ca.refused != nil {
			return nil, nil, ca.refused, err
		}
		errs = append(errs, err)
	}
	return nil, nil, nil, errors.Join(errs...)
}

// certificate checks a signature that carries a certificate: against the
// trusted roots of the keyless authorities (keyless), and the PKIs of the
// x509 authorities. leaf is the certificate, chain what the signature
// carries above it. ok is false for an attestation (see keyless).
func (v *Verifier) certificate(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption, subject, what string, use bundleUse, leaf *x509.Certificate, chain []*x509.Certificate) (policy.Signature, bool) {
	var sig policy.Signature
	if len(v.roots) > 0 || len(v.x509Authorities) == 0 {
		var ok bool
		if sig, ok = v.keyless(b, artifact, subject, what, use); !ok || sig.Malformed {
			return sig, ok
		}
	}
	if len(v.x509Authorities) == 0 {
		return sig, true
	}
	facts := &policy.X509Facts{SANs: sansOf(leaf)}
	var (
		problems []string
		st       statement
		signedAt time.Time
	)
	for _, x := range v.x509Authorities {
		res, path, refused, err := x.verify(b, artifact, chain)
		switch {
		case refused != nil:
			problem := fmt.Sprintf("x509 authority %s: %v", x.name, refused)
			if facts.Problem == "" {
				facts.Problem = problem
			}
			problems = append(problems, problem)
			continue
		case err != nil:
			problems = append(problems, fmt.Sprintf("x509 authority %s: %v", x.name, err))
			continue
		}
		if len(facts.Authorities) == 0 {
			var (
				keep    bool
				problem string
			)
			if st, keep, problem = subjectsOf(res, subject, use); !keep {
				return policy.Signature{}, false
			} else if problem != "" {
				return malformed(problem), true
			}
			facts.Path = policy.PathOf(path)
		} else {
			facts.Others = append(facts.Others, policy.PathOf(path)...)
		}
		facts.Authorities = append(facts.Authorities, x.name)
		if facts.Chains == nil {
			facts.Chains = map[string][]*x509.Certificate{}
		}
		facts.Chains[x.name] = path
		if x.times != nil {
			if t := earliest(res.VerifiedTimestamps); !t.IsZero() && (signedAt.IsZero() || t.Before(signedAt)) {
				signedAt = t
			}
		}
	}
	sig.X509 = facts
	if len(facts.Authorities) == 0 {
		sig.Problem = strings.Join(append(nonEmpty(sig.Problem), problems...), "; ")
		return sig, true
	}
	sig.KeyID = policy.CertKeyID(leaf)
	if len(sig.RootVerified) == 0 { // the keyless roots' problem is not this signature's
		sig.Problem, sig.Subjects, sig.PredicateType, sig.Attestation = "", st.subjects, st.predicateType, st.facts
	}
	if !signedAt.IsZero() && (sig.SignedAt.IsZero() || signedAt.Before(sig.SignedAt)) {
		sig.SignedAt = signedAt
	}
	return sig, true
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// sansOf lists a certificate's URI and email Subject Alternative Names.
func sansOf(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return append(out, c.EmailAddresses...)
}

// mayBeX509 reports whether a certificate names an identity of an x509
// authority: a hint for the order of checks, never trust.
func (v *Verifier) mayBeX509(leaf *x509.Certificate) bool {
	sans := sansOf(leaf)
	return slices.ContainsFunc(v.x509Authorities, func(x x509Authority) bool {
		return slices.ContainsFunc(x.pki.Identities, func(id string) bool { return slices.Contains(sans, id) })
	})
}
