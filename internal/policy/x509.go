package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	return out, nil
}
