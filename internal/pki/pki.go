// Package pki validates the certificate path of a code-signing certificate
// strictly: what Go's crypto/x509 checks, and what it leaves to its caller
// (THREATS §1.H). crypto/x509 builds the paths and checks signatures,
// validity, CA flags, path lengths, the name constraints it knows, unknown
// critical extensions and the nesting of extended key usages; this package
// adds the leaf's own extended key usage (an EKU-less leaf passes Go's
// KeyUsages check), key usages, an algorithm allowlist, serial numbers, key
// identifiers (a CA names its key, each certificate its issuer's) and name
// constraints Go cannot enforce. It decides nothing about trust beyond
// "this path is sound": which roots to trust and which identity to accept
// are the policy's.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxIntermediates bounds the intermediate certificates a path is built
// from (a signature's chain and the policy's together).
const MaxIntermediates = 16

// MaxPathLength bounds a validated path, leaf and root included.
const MaxPathLength = 6

// MinRSABits is the smallest RSA modulus accepted anywhere in a path.
const MinRSABits = 2048

// Error is a refusal: the THREATS.md row it is about, and what failed.
type Error struct {
	// Row is the THREATS.md PKI row, such as "PKI-03".
	Row string
	Msg string
}

func (e *Error) Error() string { return e.Msg + " (" + e.Row + ")" }

func refuse(row, format string, args ...any) *Error {
	return &Error{Row: row, Msg: fmt.Sprintf(format, args...)}
}

// ErrUnknownAuthority is returned when the leaf chains to none of the roots:
// not a refused path, but no path at all.
var ErrUnknownAuthority = errors.New("the certificate does not chain to a trusted root")

// CheckRoot checks a certificate configured as a trust anchor: a
// self-signed CA certificate (basicConstraints CA:TRUE), with keyCertSign
// when it carries a key usage, and an allowed key (PKI-10, PKI-12).
func CheckRoot(c *x509.Certificate) error {
	switch {
	case !c.BasicConstraintsValid || !c.IsCA:
		return refuse("PKI-12", "root %q is not a CA certificate", c.Subject)
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
		return refuse("PKI-04", "root %q has a key usage without keyCertSign", c.Subject)
	case !signs(c, c):
		return refuse("PKI-12", "root %q is not self-signed", c.Subject)
	}
	if err := checkKeyIdentifiers(c); err != nil {
		return err
	}
	return CheckKey(c)
}

// signs reports whether parent's name and key issued c, by the signature
// alone (CheckSignatureFrom would also judge parent's CA flags and key
// usage, which the checks here report with their own rows).
func signs(parent, c *x509.Certificate) bool {
	return bytes.Equal(parent.RawSubject, c.RawIssuer) &&
		parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// CheckTimestampChain checks the chain a trusted root gives a timestamp
// authority (THREATS PKI-13): its root a trust anchor as CheckRoot says (a
// self-signed CA certificate: Go's path building trusts whatever anchor it
// is given), its intermediates CA certificates, its leaf, when given, an
// end entity. What each timestamp's token must be (the leaf's sole,
// critical timeStamping EKU, the chain to this root, the signature bytes
// covered) is checked as each is verified (sigstore's timestamp-authority
// verification, through sigstore-go).
func CheckTimestampChain(leaf *x509.Certificate, intermediates []*x509.Certificate, root *x509.Certificate) error {
	if root == nil {
		return refuse("PKI-13", "a timestamp authority without a root certificate")
	}
	if err := CheckRoot(root); err != nil {
		return refuse("PKI-13", "timestamp authority root: %v", err)
	}
	for _, c := range intermediates {
		if err := CheckIntermediate(c); err != nil {
			return refuse("PKI-13", "timestamp authority intermediate: %v", err)
		}
	}
	if leaf != nil && leaf.BasicConstraintsValid && leaf.IsCA {
		return refuse("PKI-13", "timestamp authority certificate %q is a CA certificate", leaf.Subject)
	}
	return nil
}

// CheckIntermediate checks a certificate configured as an intermediate: a
// CA certificate that is not self-signed, with keyCertSign, an allowed key
// and signature algorithm.
func CheckIntermediate(c *x509.Certificate) error {
	if signs(c, c) {
		return refuse("PKI-12", "intermediate %q is self-signed: a root belongs with the roots", c.Subject)
	}
	return checkIssuer(c)
}

// VerifyCodeSigning validates the path of a code-signing leaf at time at:
// every certificate valid at that instant (both ends of a validity period
// included), ending in one of roots, through intermediates. It returns the
// first path that passes every check, leaf first and root last.
func VerifyCodeSigning(leaf *x509.Certificate, intermediates, roots []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if len(intermediates) > MaxIntermediates {
		return nil, refuse("PKI-12", "%d intermediate certificates, more than %d", len(intermediates), MaxIntermediates)
	}
	rootPool, interPool := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	for _, c := range intermediates {
		interPool.AddCert(c)
	}
	// First any path at all, so that a certificate of another PKI is
	// reported as unknown, not as refused for a detail.
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: rootPool, Intermediates: interPool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if errors.As(err, new(x509.UnknownAuthorityError)) {
		return nil, explain(leaf, intermediates, roots)
	}
	if err != nil {
		return nil, goError(err, at)
	}
	if err := checkLeaf(leaf); err != nil {
		return nil, err
	}
	// Then the paths on which codeSigning nests: an issuer's EKUs
	// constrain what it issues (Go checks the nesting once asked for an
	// EKU; the leaf's own list is checked in checkLeaf).
	if chains, err = leaf.Verify(x509.VerifyOptions{
		Roots: rootPool, Intermediates: interPool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}); err != nil {
		return nil, goError(err, at)
	}
	var first error
	for _, chain := range chains {
		err := checkPath(chain)
		if err == nil {
			return chain, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// explain says why crypto/x509 found no path. Go skips a candidate issuer
// it refuses (not a CA, no keyCertSign, a SHA-1 signature) and then
// reports an unknown authority; this walks the issuers by name and
// signature alone and reports the first check a certificate on the way
// fails, so a broken path of the right PKI is refused with its row. A leaf
// whose issuers are not there at all is ErrUnknownAuthority.
func explain(leaf *x509.Certificate, intermediates, roots []*x509.Certificate) error {
	cur := leaf
	for depth := 0; depth < MaxPathLength; depth++ {
		if err := checkSignatureAlgorithm(cur); err != nil && (depth > 0 || issuedBy(cur, intermediates, roots) != nil) {
			return err
		}
		if depth > 0 {
			if err := checkIssuer(cur); err != nil {
				return err
			}
		}
		if slices.ContainsFunc(roots, func(r *x509.Certificate) bool { return signs(r, cur) }) {
			return ErrUnknownAuthority // a root signs it, yet Go found no path: nothing more specific to say
		}
		next := issuedBy(cur, intermediates, nil)
		if next == nil {
			return ErrUnknownAuthority
		}
		cur = next
	}
	return refuse("PKI-06", "no path within %d certificates", MaxPathLength)
}

// issuedBy returns the certificate of intermediates or roots that signs c,
// or nil.
func issuedBy(c *x509.Certificate, intermediates, roots []*x509.Certificate) *x509.Certificate {
	for _, p := range slices.Concat(intermediates, roots) {
		if p != c && signs(p, c) {
			return p
		}
	}
	return nil
}

// checkLeaf checks what a code-signing leaf must be and Go does not check.
func checkLeaf(c *x509.Certificate) error {
	switch {
	case c.BasicConstraintsValid && c.IsCA:
		return refuse("PKI-05", "leaf %q is a CA certificate", c.Subject)
	case c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return refuse("PKI-04", "leaf %q has no digitalSignature key usage", c.Subject)
	case len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0:
		return refuse("PKI-03", "leaf %q has no extended key usage: codeSigning is required", c.Subject)
	}
	codeSigning := false
	for _, u := range c.ExtKeyUsage {
		codeSigning = codeSigning || u == x509.ExtKeyUsageCodeSigning
	}
	if !codeSigning {
		return refuse("PKI-03", "leaf %q lacks the codeSigning extended key usage", c.Subject)
	}
	if err := checkSerial(c); err != nil {
		return err
	}
	if err := CheckKey(c); err != nil {
		return err
	}
	return checkSignatureAlgorithm(c)
}

// checkPath checks every certificate above the leaf, and the length.
func checkPath(chain []*x509.Certificate) error {
	if len(chain) > MaxPathLength {
		return refuse("PKI-06", "a path of %d certificates, more than %d", len(chain), MaxPathLength)
	}
	for i, c := range chain {
		if err := checkNameConstraints(c); err != nil {
			return err
		}
		if len(c.UnhandledCriticalExtensions) > 0 && i > 0 {
			return refuse("PKI-11", "%q has an unknown critical extension %v", c.Subject, c.UnhandledCriticalExtensions[0])
		}
		if i < len(chain)-1 {
			if err := checkAuthorityKeyID(c, chain[i+1]); err != nil {
				return err
			}
		}
		if i == 0 {
			continue
		}
		if i == len(chain)-1 {
			if err := CheckRoot(c); err != nil {
				return err
			}
			continue
		}
		if err := checkIssuer(c); err != nil {
			return err
		}
	}
	return nil
}

// checkIssuer checks an intermediate CA of a path.
func checkIssuer(c *x509.Certificate) error {
	switch {
	case !c.BasicConstraintsValid || !c.IsCA:
		return refuse("PKI-05", "intermediate %q is not a CA certificate (basicConstraints CA:TRUE)", c.Subject)
	case c.KeyUsage&x509.KeyUsageCertSign == 0:
		return refuse("PKI-04", "intermediate %q has no keyCertSign key usage", c.Subject)
	}
	if err := checkSerial(c); err != nil {
		return err
	}
	if err := checkKeyIdentifiers(c); err != nil {
		return err
	}
	if err := CheckKey(c); err != nil {
		return err
	}
	return checkSignatureAlgorithm(c)
}

// checkKeyIdentifiers holds a CA certificate to RFC 5280 4.2.1.2: it names
// its key (a subject key identifier) (PKI-14, strict). Go's parser refuses
// a key identifier marked critical.
func checkKeyIdentifiers(c *x509.Certificate) error {
	if len(c.SubjectKeyId) == 0 {
		return refuse("PKI-14", "CA certificate %q has no subject key identifier", c.Subject)
	}
	return nil
}

// checkAuthorityKeyID holds a certificate its issuer signed to RFC 5280
// 4.2.1.1: it names the issuer's key (an authority key identifier), the one
// the issuer names as its own (PKI-14, strict).
func checkAuthorityKeyID(c, issuer *x509.Certificate) error {
	switch {
	case len(issuer.SubjectKeyId) == 0:
		return checkKeyIdentifiers(issuer)
	case len(c.AuthorityKeyId) == 0:
		return refuse("PKI-14", "%q has no authority key identifier", c.Subject)
	case !bytes.Equal(c.AuthorityKeyId, issuer.SubjectKeyId):
		return refuse("PKI-14", "the authority key identifier of %q is not the subject key identifier of its issuer %q", c.Subject, issuer.Subject)
	}
	return nil
}

// CheckKey checks a certificate's public key against the allowlist: RSA of
// at least MinRSABits bits (a whole number of bytes), ECDSA P-256 or P-384,
// Ed25519 (PKI-10).
func CheckKey(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n%8 != 0 {
			return refuse("PKI-10", "%q has an RSA key of %d bits: at least %d, a multiple of 8", c.Subject, n, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return refuse("PKI-10", "%q has an ECDSA key on %s: P-256 or P-384 only", c.Subject, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return refuse("PKI-10", "%q has a %s key: RSA, ECDSA or Ed25519 only", c.Subject, c.PublicKeyAlgorithm)
	}
	return nil
}

// checkSignatureAlgorithm refuses a signature by SHA-1, MD5 or another
// algorithm outside the allowlist (PKI-10). A root's self-signature is not
// checked: nothing relies on it.
func checkSignatureAlgorithm(c *x509.Certificate) error {
	switch c.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
		x509.PureEd25519:
		return nil
	}
	return refuse("PKI-10", "%q is signed with %s: SHA-256 or stronger only", c.Subject, c.SignatureAlgorithm)
}

// checkSerial refuses a serial number that is zero or longer than 20 bytes
// (RFC 5280 4.1.2.2; Go refuses negative ones while parsing) (PKI-14).
func checkSerial(c *x509.Certificate) error {
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 || len(c.SerialNumber.Bytes()) > 20 {
		return refuse("PKI-14", "%q has a serial number that is not a positive integer of at most 20 bytes", c.Subject)
	}
	return nil
}

var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

// checkNameConstraints refuses name constraints of a form Go does not
// enforce (a directoryName, otherName, x400Address, ediPartyName or
// registeredID subtree): rather than ignore a constraint, refuse the path
// (PKI-07). Go enforces dNSName, iPAddress, rfc822Name and URI subtrees.
func checkNameConstraints(c *x509.Certificate) error {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidNameConstraints) {
			continue
		}
		var nc struct {
			Permitted []generalSubtree `asn1:"optional,tag:0"`
			Excluded  []generalSubtree `asn1:"optional,tag:1"`
		}
		if rest, err := asn1.Unmarshal(e.Value, &nc); err != nil || len(rest) > 0 {
			return refuse("PKI-07", "%q has name constraints that do not parse", c.Subject)
		}
		for _, st := range append(nc.Permitted, nc.Excluded...) {
			switch st.Base.Tag {
			case 1, 2, 6, 7: // rfc822Name, dNSName, uniformResourceIdentifier, iPAddress
			default:
				return refuse("PKI-07", "%q has a name constraint of GeneralName form [%d], which chartproof cannot enforce", c.Subject, st.Base.Tag)
			}
		}
	}
	return nil
}

type generalSubtree struct {
	Base asn1.RawValue
	Min  int `asn1:"optional,tag:0,default:0"`
	Max  int `asn1:"optional,tag:1"`
}

// goError maps an error of crypto/x509's path building to a refusal.
func goError(err error, at time.Time) error {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		insecure x509.InsecureAlgorithmError
		critical x509.UnhandledCriticalExtension
	)
	switch {
	case errors.As(err, &unknown):
		return ErrUnknownAuthority
	case errors.As(err, &insecure):
		return refuse("PKI-10", "%v", err)
	case errors.As(err, &critical):
		return refuse("PKI-11", "%v", err)
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			row := "PKI-01"
			if strings.Contains(invalid.Detail, "is before") {
				row = "PKI-02" // not yet valid
			}
			return refuse(row, "a certificate of the path is not valid at %s: %v", at.UTC().Format(time.RFC3339), err)
		case x509.NotAuthorizedToSign:
			return refuse("PKI-05", "%v", err)
		case x509.TooManyIntermediates:
			return refuse("PKI-06", "%v", err)
		case x509.IncompatibleUsage, x509.CANotAuthorizedForExtKeyUsage:
			return refuse("PKI-03", "%v", err)
		case x509.CANotAuthorizedForThisName, x509.UnconstrainedName:
			return refuse("PKI-07", "%v", err)
		}
	}
	return refuse("PKI-12", "%v", err)
}
