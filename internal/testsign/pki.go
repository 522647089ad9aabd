package testsign

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// CA is a certificate authority of a throwaway PKI: a root, or an
// intermediate under another CA. Tests shape each certificate with a
// function that edits its template before it is signed, to build the
// broken paths of THREATS PKI-* and their control twins.
type CA struct {
	Cert *x509.Certificate
	Key  *Key
}

var serials atomic.Int64

// nextSerial returns a fresh positive serial number.
func nextSerial() *big.Int {
	return big.NewInt(1000 + serials.Add(1))
}

// NewRootCA makes a self-signed root CA (P-256, valid ±10h, CA:TRUE,
// keyCertSign and cRLSign), its template edited by edit when not nil.
func NewRootCA(cn string, edit func(*x509.Certificate)) (*CA, error) {
	return newCA(nil, cn, "p256", edit)
}

// NewIntermediate makes an intermediate CA under ca, shaped like a root
// but signed by ca.
func (ca *CA) NewIntermediate(cn string, edit func(*x509.Certificate)) (*CA, error) {
	return newCA(ca, cn, "p256", edit)
}

func newCA(parent *CA, cn, kind string, edit func(*x509.Certificate)) (*CA, error) {
	key, err := NewKey(kind)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"chartproof.test"}},
		NotBefore: now.Add(-10 * time.Hour), NotAfter: now.Add(10 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	if edit != nil {
		edit(tmpl)
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Signer.Public(), signer.Signer)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

// Issue makes a code-signing leaf for key (codeSigning EKU, digitalSignature,
// the email SAN given, valid ±1h), its template edited by edit when not nil.
func (ca *CA) Issue(key *Key, email string, edit func(*x509.Certificate)) (*x509.Certificate, error) {
	return ca.IssueFor(key.Signer.Public(), email, edit)
}

// IssueFor is Issue for a public key whose private key is elsewhere (a
// cosign.key).
func (ca *CA) IssueFor(pub crypto.PublicKey, email string, edit func(*x509.Certificate)) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "release signing", Organization: []string{"chartproof.test"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		EmailAddresses: []string{email},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key.Signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// PEM encodes certificates as PEM CERTIFICATE blocks.
func PEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// CRL makes a DER CRL of ca listing the certificates given, revoked an hour
// ago, issued now and next updated at nextUpdate; edit changes its template.
func (ca *CA) CRL(revoked []*x509.Certificate, nextUpdate time.Time, edit func(*x509.RevocationList)) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.RevocationList{Number: nextSerial(), ThisUpdate: now.Add(-time.Minute), NextUpdate: nextUpdate}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Hour)})
	}
	if edit != nil {
		edit(tmpl)
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key.Signer)
}

// OCSPResponse makes ca's DER OCSP response for cert, signed by ca itself:
// ocsp.Good, ocsp.Revoked (an hour ago) or ocsp.Unknown, valid for an hour.
func (ca *CA) OCSPResponse(cert *x509.Certificate, status int) ([]byte, error) {
	return ca.OCSPResponseWith(cert, status, nil)
}

// OCSPResponseWith is OCSPResponse with edit applied to the response before
// it is signed (a stale answer, an answer for another serial).
func (ca *CA) OCSPResponseWith(cert *x509.Certificate, status int, edit func(*ocsp.Response)) ([]byte, error) {
	now := time.Now()
	tmpl := ocsp.Response{Status: status, SerialNumber: cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-time.Hour), ocsp.KeyCompromise
	}
	if edit != nil {
		edit(&tmpl)
	}
	return ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key.Signer)
}

// CRLPoint is a CRL distribution point on loopback: it serves what Serve or
// Publish last gave it, and answers 503 (down) before and after Serve(nil).
type CRLPoint struct {
	// URL is the distribution point, for a certificate's
	// CRLDistributionPoints.
	URL     string
	srv     *httptest.Server
	mu      sync.Mutex
	crl     []byte
	fetches int
}

// NewCRLPoint starts a CRL distribution point; Close stops it.
func NewCRLPoint() *CRLPoint {
	p := &CRLPoint{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.fetches++
		if p.crl == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(p.crl)
	}))
	p.URL = p.srv.URL + "/ca.crl"
	return p
}

// Fetches is how many requests the distribution point had.
func (p *CRLPoint) Fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

// Close stops the distribution point.
func (p *CRLPoint) Close() { p.srv.Close() }

// Serve serves der as it is; nil takes the distribution point down.
func (p *CRLPoint) Serve(der []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.crl = der
}

// Publish serves ca's CRL listing revoked, next updated in a day.
func (p *CRLPoint) Publish(ca *CA, revoked ...*x509.Certificate) error {
	der, err := ca.CRL(revoked, time.Now().Add(24*time.Hour), nil)
	if err != nil {
		return err
	}
	p.Serve(der)
	return nil
}
