package pki_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/chartproof/chartproof/internal/pki"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestVerifyCodeSigning builds paths root -> intermediate -> leaf in Go,
// each broken in one way (THREATS PKI-*), and expects the row it breaks;
// the first rows are the control twins, the same path unbroken.
func TestVerifyCodeSigning(t *testing.T) {
	now := time.Now()
	type pathSpec struct {
		root, inter, leaf func(*x509.Certificate)
		leafKey           string // testsign key kind, default p256
		extraInter        bool   // a second intermediate under the first
		at                time.Time
	}
	tests := []struct {
		name     string
		spec     pathSpec
		wantRow  string // "" accepts; "unknown" is ErrUnknownAuthority
		wantText string // in the refusal, when set
	}{
		{name: "control: a sound path", spec: pathSpec{}},
		{name: "control: RSA-2048 leaf", spec: pathSpec{leafKey: "rsa2048"}},
		{name: "control: Ed25519 leaf", spec: pathSpec{leafKey: "ed25519"}},
		{name: "control: leaf with codeSigning among other EKUs", spec: pathSpec{leaf: func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageCodeSigning}
		}}},
		{name: "control: expired leaf judged inside its validity", spec: pathSpec{leaf: expired, at: now.Add(-90 * time.Minute)}},
		{name: "control: at notBefore exactly", spec: pathSpec{leaf: func(c *x509.Certificate) { c.NotBefore = now.Truncate(time.Second) }, at: now.Truncate(time.Second)}},
		{name: "control: at notAfter exactly", spec: pathSpec{leaf: func(c *x509.Certificate) { c.NotAfter = now.Truncate(time.Second) }, at: now.Truncate(time.Second)}},
		{name: "control: pathlen 1 with two intermediates", spec: pathSpec{inter: pathLen(1), extraInter: true}},
		{name: "control: key identifiers set by hand", spec: pathSpec{inter: subjectKeyID, leaf: authorityKeyID(keyID)}},
		{name: "control: DNS name constraints", spec: pathSpec{inter: func(c *x509.Certificate) { c.PermittedEmailAddresses = []string{"chartproof.test"} }}},

		{name: "leaf without EKU (PKI-03)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.ExtKeyUsage = nil }}, wantRow: "PKI-03"},
		{name: "leaf with serverAuth only (PKI-03)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }}, wantRow: "PKI-03"},
		{name: "leaf with anyExtendedKeyUsage only (PKI-03)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }}, wantRow: "PKI-03"},
		{name: "intermediate restricted to serverAuth (PKI-03)", spec: pathSpec{inter: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }}, wantRow: "PKI-03"},
		{name: "leaf without digitalSignature (PKI-04)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }}, wantRow: "PKI-04"},
		{name: "intermediate without keyCertSign (PKI-04)", spec: pathSpec{inter: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }}, wantRow: "PKI-04"},
		{name: "CA:FALSE intermediate (PKI-05)", spec: pathSpec{inter: func(c *x509.Certificate) { c.IsCA = false }}, wantRow: "PKI-05"},
		{name: "intermediate without basicConstraints (PKI-05)", spec: pathSpec{inter: func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = false, false }}, wantRow: "PKI-05"},
		{name: "CA certificate as leaf (PKI-05)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true }}, wantRow: "PKI-05"},
		{name: "pathlen 0 with two intermediates (PKI-06)", spec: pathSpec{inter: pathLen(0), extraInter: true}, wantRow: "PKI-06"},
		{name: "expired leaf judged now (PKI-01)", spec: pathSpec{leaf: expired}, wantRow: "PKI-01"},
		{name: "expired intermediate (PKI-01)", spec: pathSpec{inter: expired}, wantRow: "PKI-01"},
		{name: "leaf not yet valid (PKI-02)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.NotBefore = now.Add(time.Minute) }}, wantRow: "PKI-02"},
		{name: "one second before notBefore (PKI-02)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.NotBefore = now.Truncate(time.Second) }, at: now.Truncate(time.Second).Add(-time.Second)}, wantRow: "PKI-02"},
		{name: "RSA-1024 leaf (PKI-10)", spec: pathSpec{leafKey: "rsa1024"}, wantRow: "PKI-10"},
		{name: "P-521 leaf (PKI-10)", spec: pathSpec{leafKey: "p521"}, wantRow: "PKI-10"},
		{name: "leaf signed with SHA-1 (PKI-10)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.SignatureAlgorithm = x509.ECDSAWithSHA1 }}, wantRow: "PKI-10"},
		{name: "unknown critical extension on the intermediate (PKI-11)", spec: pathSpec{inter: criticalExtension}, wantRow: "PKI-11"},
		{name: "unknown critical extension on the leaf (PKI-11)", spec: pathSpec{leaf: criticalExtension}, wantRow: "PKI-11"},
		{name: "directoryName name constraint (PKI-07)", spec: pathSpec{inter: directoryNameConstraint}, wantRow: "PKI-07"},
		{name: "email outside the permitted names (PKI-07)", spec: pathSpec{inter: func(c *x509.Certificate) { c.PermittedEmailAddresses = []string{"example.com"} }}, wantRow: "PKI-07"},
		{name: "serial number zero (PKI-14)", spec: pathSpec{leaf: func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0) }}, wantRow: "PKI-14"},
		{name: "leaf's authority key identifier not its issuer's (PKI-14)", spec: pathSpec{inter: subjectKeyID, leaf: authorityKeyID([]byte("another key"))},
			wantRow: "PKI-14", wantText: "is not the subject key identifier"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := testsign.NewRootCA("root", tc.spec.root)
			if err != nil {
				t.Fatal(err)
			}
			inter, err := root.NewIntermediate("intermediate", tc.spec.inter)
			if err != nil {
				t.Fatal(err)
			}
			inters := []*x509.Certificate{inter.Cert}
			issuer := inter
			if tc.spec.extraInter {
				if issuer, err = inter.NewIntermediate("intermediate 2", nil); err != nil {
					t.Fatal(err)
				}
				inters = append(inters, issuer.Cert)
			}
			kind := tc.spec.leafKey
			if kind == "" {
				kind = "p256"
			}
			key, err := testsign.NewKey(kind)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := issuer.Issue(key, "release@chartproof.test", tc.spec.leaf)
			if err != nil {
				t.Fatal(err)
			}
			at := tc.spec.at
			if at.IsZero() {
				at = now
			}
			chain, err := pki.VerifyCodeSigning(leaf, inters, []*x509.Certificate{root.Cert}, at)
			if tc.wantRow == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(chain) != len(inters)+2 || chain[0] != leaf || !chain[len(chain)-1].Equal(root.Cert) {
					t.Fatalf("path of %d certificates, want leaf, %d intermediates, root", len(chain), len(inters))
				}
				return
			}
			var perr *pki.Error
			if !errors.As(err, &perr) || perr.Row != tc.wantRow || !strings.Contains(perr.Msg, tc.wantText) {
				t.Fatalf("got %v, want a refusal of %s naming %q", err, tc.wantRow, tc.wantText)
			}
		})
	}
}

// keyID is the key identifier the key identifier rows set by hand.
var keyID = []byte("intermediate key")

// subjectKeyID makes a CA certificate name its key as keyID. (A key
// identifier extension marked critical cannot be made: Go's parser refuses
// it, as it refuses any certificate that has one.)
func subjectKeyID(c *x509.Certificate) { c.SubjectKeyId = keyID }

// authorityKeyID makes a certificate name its issuer's key as id.
func authorityKeyID(id []byte) func(*x509.Certificate) {
	return func(c *x509.Certificate) {
		value, _ := asn1.Marshal(struct {
			ID []byte `asn1:"optional,tag:0"`
		}{id})
		c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 35}, Value: value})
	}
}

// TestUnknownAuthority: a sound path to another root is no path at all;
// its control twin is the same leaf under its own root.
func TestUnknownAuthority(t *testing.T) {
	root, err := testsign.NewRootCA("root", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testsign.NewRootCA("other root", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := testsign.NewKey("p256")
	leaf, err := root.Issue(key, "release@chartproof.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.VerifyCodeSigning(leaf, nil, []*x509.Certificate{other.Cert}, time.Now()); !errors.Is(err, pki.ErrUnknownAuthority) {
		t.Fatalf("under another root: %v, want ErrUnknownAuthority", err)
	}
	if _, err := pki.VerifyCodeSigning(leaf, nil, []*x509.Certificate{root.Cert}, time.Now()); err != nil {
		t.Fatalf("control, under its root: %v", err)
	}
}

// TestCheckRoot: a trust store holds self-signed CA certificates only
// (PKI-12); a root with a key usage needs keyCertSign (PKI-04).
func TestCheckRoot(t *testing.T) {
	root, err := testsign.NewRootCA("root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.CheckRoot(root.Cert); err != nil {
		t.Fatalf("control: %v", err)
	}
	inter, err := root.NewIntermediate("intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := testsign.NewKey("p256")
	leaf, err := root.Issue(key, "release@chartproof.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	noCertSign, err := testsign.NewRootCA("root", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		row  string
	}{
		"leaf in the trust store":  {leaf, "PKI-12"},
		"intermediate as a root":   {inter.Cert, "PKI-12"},
		"root without keyCertSign": {noCertSign.Cert, "PKI-04"},
	} {
		var perr *pki.Error
		if err := pki.CheckRoot(tc.cert); !errors.As(err, &perr) || perr.Row != tc.row {
			t.Errorf("%s: %v, want a refusal of %s", name, err, tc.row)
		}
	}
	if err := pki.CheckIntermediate(inter.Cert); err != nil {
		t.Errorf("control: intermediate: %v", err)
	}
	if err := pki.CheckIntermediate(root.Cert); err == nil {
		t.Errorf("a root accepted as an intermediate")
	}
}

func expired(c *x509.Certificate) {
	c.NotBefore, c.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
}

func pathLen(n int) func(*x509.Certificate) {
	return func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = n, n == 0 }
}

func criticalExtension(c *x509.Certificate) {
	c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}})
}

// directoryNameConstraint permits one directoryName subtree: a form Go
// parses (and, non-critical, ignores) but does not enforce.
func directoryNameConstraint(c *x509.Certificate) {
	dn, err := asn1.Marshal(pkix.Name{CommonName: "x", Organization: []string{"chartproof.test"}}.ToRDNSequence())
	if err != nil {
		panic(err)
	}
	subtree, err := asn1.Marshal(struct {
		Base asn1.RawValue
	}{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: dn}})
	if err != nil {
		panic(err)
	}
	value, err := asn1.Marshal(struct {
		Permitted asn1.RawValue
	}{asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: subtree}})
	if err != nil {
		panic(err)
	}
	c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 30}, Value: value})
}
