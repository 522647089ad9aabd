package testsign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// TSA is an RFC 3161 timestamp authority of a throwaway PKI: its own
// certificate (the timeStamping EKU, critical, as RFC 3161 2.3 asks) under
// an issuing CA. Tests shape its certificate and its tokens to build the
// broken timestamps of THREATS PKI-13 and their control twins.
type TSA struct {
	Root          *x509.Certificate
	Intermediates []*x509.Certificate
	Cert          *x509.Certificate
	// ValidUntil, when set, ends the authority's validity in the trusted
	// root (validFor.end): how a trusted root withdraws an authority.
	ValidUntil time.Time
	key        *Key
}

// NewTSA makes a timestamp authority whose certificate issuer signs, its
// template edited by edit when not nil; root is the top of issuer's chain,
// intermediates what lies between (none when issuer is the root).
func NewTSA(issuer *CA, intermediates []*x509.Certificate, root *x509.Certificate, edit func(*x509.Certificate)) (*TSA, error) {
	key, err := NewKey("p256")
	if err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, err
	}
	cert, err := issuer.IssueFor(key.Signer.Public(), "tsa@chartproof.test", func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "timestamp authority", Organization: []string{"chartproof.test"}}
		c.NotBefore, c.NotAfter = time.Now().Add(-10*time.Hour), time.Now().Add(10*time.Hour)
		c.ExtKeyUsage = nil
		c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}}
		if edit != nil {
			edit(c)
		}
	})
	if err != nil {
		return nil, err
	}
	return &TSA{Root: root, Intermediates: intermediates, Cert: cert, key: key}, nil
}

// Authority is the timestamp authority as a trusted root lists it.
func (t *TSA) Authority() *root.SigstoreTimestampingAuthority {
	return &root.SigstoreTimestampingAuthority{Root: t.Root, Intermediates: t.Intermediates, Leaf: t.Cert, URI: "https://tsa.chartproof.test",
		ValidityPeriodStart: t.Cert.NotBefore, ValidityPeriodEnd: t.ValidUntil}
}

// TrustedRootJSON is a trusted_root.json listing the timestamp authorities
// alone: no certificate authority, no log.
func TrustedRootJSON(tsas ...*TSA) ([]byte, error) {
	var list []root.TimestampingAuthority
	for _, t := range tsas {
		list = append(list, t.Authority())
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, list, nil)
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}

// Token is the authority's RFC 3161 response over data (a signature's
// bytes), made at, the TSA certificate included, edited by edit before it
// is signed when not nil.
func (t *TSA) Token(data []byte, at time.Time, edit func(*timestamp.Timestamp)) ([]byte, error) {
	sum := sha256.Sum256(data)
	ts := &timestamp.Timestamp{
		HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Time: at, Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
		SerialNumber: nextSerial(), AddTSACertificate: true,
	}
	if edit != nil {
		edit(ts)
	}
	return ts.CreateResponseWithOpts(t.Cert, t.key.Signer, crypto.SHA256)
}
