package policy

import (
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/pki"
)

// X509 is an x509 authority's trust material: the roots and intermediates
// of a PKI, the identities its leaves may name, and where signing times
// come from.
type X509 struct {
	Roots         []*x509.Certificate
	Intermediates []*x509.Certificate
	// Identities are the Subject Alternative Names (URI or email) a leaf
	// may name, compared exactly.
	Identities []string
	// Times is the trusted root whose logs and timestamp authorities vouch
	// for signing times; nil judges the path at the time of verification.
	Times *TrustRoot
	// Revocation tunes the CRL and OCSP checks of the paths.
	Revocation X509Revocation
}

// Defaults of an x509 authority's revocation checks.
const (
	DefaultRevocationRefresh = time.Minute
	DefaultRevocationTimeout = 5 * time.Second
	// MaxCRLBytes caps a CRL, from the cluster or a distribution point.
	MaxCRLBytes = 8 << 20
)

// X509Revocation is an x509 authority's revocation settings, compiled.
type X509Revocation struct {
	// SoftFail counts a signature whose path's revocation status is
	// unknown (the evidence says so); otherwise it does not count.
	SoftFail bool
	// CRLs are the DER CRLs the cluster serves, by distribution point URL.
	CRLs map[string][]byte
	// Refresh is the longest a CRL or OCSP answer is used; Timeout bounds
	// each request.
	Refresh, Timeout time.Duration
	// ID names these settings (the CRLs' bytes and the bounds), for caches
	// of what they answered.
	ID string
	// Owner names the policy and authority these settings are of: settings
	// compiled later for the same owner replace them (internal/revocation
	// watches a path under its owner's latest settings only).
	Owner string
}

// Revocation status of a validated path (RevocationStatus.Status).
const (
	RevocationGood    = "Good"
	RevocationRevoked = "Revoked"
	RevocationUnknown = "Unknown"
)

// RevocationStatus is what OCSP responders and CRLs said of the path an
// x509 authority validated, as internal/gate gathered it.
type RevocationStatus struct {
	// Status is RevocationGood (every certificate that names a responder
	// or a distribution point is known not revoked at the signing time),
	// RevocationRevoked, or RevocationUnknown.
	Status string `json:"status"`
	// Detail names the certificate and the server, for Revoked and Unknown.
	Detail string `json:"detail,omitempty"`
}

// X509Facts is what internal/verify established about a signature that
// carries a certificate, for the x509 authorities of the policy.
type X509Facts struct {
	// Authorities names the x509 authorities under whose PKI the
	// signature verified: the leaf's key verifies it, the path from the
	// leaf to one of the authority's roots passes every check of
	// internal/pki at the signing time (Signature.SignedAt, or the time of
	// verification when the authority names no trusted root), and, with a
	// trusted root, a log or timestamp authority of it vouches for that
	// time. Whether the leaf names an identity the authority trusts is
	// Evaluate's to judge.
	Authorities []string
	// SANs are the leaf's URI and email Subject Alternative Names.
	SANs []string
	// Path is the validated path, leaf first, root last, under the first
	// authority that verified the signature.
	Path []PathCert
	// Others are the certificates of the paths validated under the other
	// authorities: revocations apply to every certificate of every path.
	Others []PathCert
	// Problem says why the path was refused, when an authority's PKI
	// issued the certificate but a check failed ("... (PKI-03)").
	Problem string
	// Chains are the validated paths, leaf first, by authority, for the
	// revocation checks.
	Chains map[string][]*x509.Certificate `json:"-"`
	// Revocation is the revocation status of each authority's path, set
	// by internal/gate after the signatures are collected (never cached
	// with them). An authority without one counts the signature as
	// RevocationUnknown: deny by default.
	Revocation map[string]RevocationStatus
}

// revocationOf is the revocation status of authority's path; Unknown when
// none was established (deny by default).
func (f *X509Facts) revocationOf(authority string) RevocationStatus {
	if st, ok := f.Revocation[authority]; ok {
		return st
	}
	return RevocationStatus{Status: RevocationUnknown, Detail: "the revocation status of the path was not checked"}
}

// withKnownStatus returns the authorities of names that still count a
// signature once its x509 paths' revocation status is known: an x509
// authority whose path is revoked is dropped (its why added to revoked),
// one whose path's status is unknown too unless its mode is SoftFail (added
// to unknown). Other authorities are kept. f may be nil.
func (f *X509Facts) withKnownStatus(names []string, byName map[string]Authority, revoked, unknown *[]string, ref string) []string {
	if f == nil {
		return names
	}
	var kept []string
	for _, n := range names {
		a := byName[n]
		if a.X509 == nil || !slices.Contains(f.Authorities, n) {
			kept = append(kept, n)
			continue
		}
		switch st := f.revocationOf(n); {
		case st.Status == RevocationRevoked:
			*revoked = append(*revoked, ref+": "+st.Detail)
		case st.Status != RevocationGood && !a.X509.Revocation.SoftFail:
			*unknown = append(*unknown, ref+": "+st.Detail)
		default:
			kept = append(kept, n)
		}
	}
	return kept
}

// PathCert identifies one certificate of a validated path.
type PathCert struct {
	// Subject is the certificate's subject, for messages.
	Subject string `json:"subject"`
	// Serial is the serial number in lowercase hex, without leading zeros.
	Serial string `json:"serial"`
	// Issuer is the issuer's key ID: the lowercase hex SHA-256 of its
	// public key's DER SubjectPublicKeyInfo (the certificate's own for a
	// root). A key, not a certificate's bytes: the signature of an
	// intermediate a signature carries can be re-encoded (an ECDSA s and
	// n-s both verify), which changes the certificate's fingerprint, never
	// its key.
	Issuer string `json:"issuer"`
}

// CertKeyID is the key ID of a certificate's public key: the lowercase hex
// SHA-256 of its DER SubjectPublicKeyInfo, as a key authority's KeyID names
// the same key (one key, one signer across kinds of authority), and as
// revocations name an issuer.
func CertKeyID(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// PathOf describes a validated path, leaf first and root last.
func PathOf(chain []*x509.Certificate) []PathCert {
	out := make([]PathCert, len(chain))
	for i, c := range chain {
		issuer := c
		if i+1 < len(chain) {
			issuer = chain[i+1]
		}
		out[i] = PathCert{Subject: c.Subject.String(), Serial: c.SerialNumber.Text(16), Issuer: CertKeyID(issuer)}
	}
	return out
}

// matchesX509 reports whether a leaf naming sans counts for a.
func (a Authority) matchesX509(sans []string) bool {
	return a.X509 != nil && slices.ContainsFunc(sans, func(s string) bool { return slices.Contains(a.X509.Identities, s) })
}

// matchingSAN is the first of sans that a trusts.
func (a Authority) matchingSAN(sans []string) string {
	for _, s := range sans {
		if slices.Contains(a.X509.Identities, s) {
			return s
		}
	}
	return ""
}

func compileX509(ref Ref, xa chartproofv1.X509Authority, read Reader) (*X509, error) {
	out := &X509{}
	roots, err := readCertificates(ref, "x509 roots", xa.Roots, read)
	if err != nil {
		return nil, err
	}
	for _, c := range roots {
		if err := pki.CheckRoot(c); err != nil {
			return nil, fmt.Errorf("x509 roots: %w", err)
		}
	}
	out.Roots = roots
	if xa.Intermediates != nil {
		inters, err := readCertificates(ref, "x509 intermediates", *xa.Intermediates, read)
		if err != nil {
			return nil, err
		}
		for _, c := range inters {
			if err := pki.CheckIntermediate(c); err != nil {
				return nil, fmt.Errorf("x509 intermediates: %w", err)
			}
		}
		out.Intermediates = inters
	}
	if len(xa.Identities) == 0 {
		return nil, errors.New("x509 authority lists no identities: there is no \"any signer\"")
	}
	for _, id := range xa.Identities {
		san := id.SubjectAlternativeName
		if strings.TrimSpace(san) == "" {
			return nil, errors.New("x509 identity with an empty subjectAlternativeName")
		}
		out.Identities = append(out.Identities, san)
	}
	if xa.TrustedRoot != nil {
		tr, err := parseTrustRoot(ref, *xa.TrustedRoot, read)
		if err != nil {
			return nil, err
		}
		if len(tr.TrustedRoot.RekorLogs()) == 0 && len(tr.TrustedRoot.TimestampingAuthorities()) == 0 {
			return nil, fmt.Errorf("trusted root %s lists no transparency log and no timestamp authority: nothing to vouch for a signing time", tr.RootSource)
		}
		out.Times = &tr
	}
	rev, err := compileX509Revocation(ref, xa.Revocation, read)
	if err != nil {
		return nil, err
	}
	out.Revocation = rev
	return out, nil
}

// compileX509Revocation reads and checks an x509 authority's revocation
// settings; nil gives the defaults.
func compileX509Revocation(ref Ref, r *chartproofv1.X509Revocation, read Reader) (out X509Revocation, err error) {
	out = X509Revocation{Refresh: DefaultRevocationRefresh, Timeout: DefaultRevocationTimeout, CRLs: map[string][]byte{}}
	h := sha256.New()
	// Named results: the ID is set on what is returned.
	defer func() { out.ID = hex.EncodeToString(h.Sum(nil)) }()
	if r == nil {
		writeField(h, []byte("defaults"))
		return out, nil
	}
	switch r.Mode {
	case "", "Enforce":
	case "SoftFail":
		out.SoftFail = true
	default:
		return out, fmt.Errorf("x509 revocation mode %q is neither Enforce nor SoftFail", r.Mode)
	}
	if r.RefreshInterval != nil {
		if d := r.RefreshInterval.Duration; d < time.Second || d > time.Hour {
			return out, fmt.Errorf("x509 revocation refreshInterval %s is outside [1s, 1h]", d)
		}
		out.Refresh = r.RefreshInterval.Duration
	}
	if r.Timeout != nil {
		if d := r.Timeout.Duration; d < 100*time.Millisecond || d > time.Minute {
			return out, fmt.Errorf("x509 revocation timeout %s is outside [100ms, 1m]", d)
		}
		out.Timeout = r.Timeout.Duration
	}
	writeField(h, []byte(fmt.Sprintf("%t %s %s", out.SoftFail, out.Refresh, out.Timeout)))
	for _, c := range r.CRLs {
		if _, dup := out.CRLs[c.URL]; dup {
			return out, fmt.Errorf("x509 revocation crls name %s twice", c.URL)
		}
		var (
			kind string
			o    *chartproofv1.CRLKeyReference
		)
		switch {
		case c.ConfigMapRef != nil && c.SecretRef == nil:
			kind, o = "configMap", c.ConfigMapRef
		case c.SecretRef != nil && c.ConfigMapRef == nil:
			kind, o = "secret", c.SecretRef
		default:
			return out, fmt.Errorf("x509 revocation CRL for %s sets not exactly one of configMapRef and secretRef", c.URL)
		}
		key := cmp.Or(o.Key, "crl")
		data, source, err := readObjectKey(ref, "x509 revocation CRL for "+c.URL+":", kind, o.Namespace, o.Name, key, read)
		if err != nil {
			return out, err
		}
		der, err := parseCRL(data)
		if err != nil {
			return out, fmt.Errorf("x509 revocation CRL for %s: %s: %w", c.URL, source, err)
		}
		out.CRLs[c.URL] = der
		writeField(h, []byte(c.URL))
		writeField(h, der)
	}
	return out, nil
}

// parseCRL returns the DER of a CRL given as DER or as one PEM "X509 CRL"
// block, after checking that it parses.
func parseCRL(data []byte) ([]byte, error) {
	if len(data) > MaxCRLBytes {
		return nil, fmt.Errorf("a CRL of %d bytes exceeds %d", len(data), MaxCRLBytes)
	}
	der := data
	if block, rest := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" || strings.TrimSpace(string(rest)) != "" {
			return nil, errors.New(`not one PEM "X509 CRL" block`)
		}
		der = block.Bytes
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		return nil, fmt.Errorf("not a CRL: %w", err)
	}
	return der, nil
}
