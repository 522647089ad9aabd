package pki

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/chartproof/chartproof/internal/testsign"
)

// TestMissingKeyIdentifiers (THREATS PKI-14): Go gives every CA certificate
// it makes a subject key identifier and every certificate a CA signs an
// authority key identifier, so their absence is made on the parsed
// certificates: a leaf or an intermediate without an authority key
// identifier, an intermediate or a root without a subject key identifier is
// refused. The control is the same path untouched.
func TestMissingKeyIdentifiers(t *testing.T) {
	root, err := testsign.NewRootCA("root", nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Issue(key, "release@chartproof.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	without := func(c *x509.Certificate, drop func(*x509.Certificate)) *x509.Certificate {
		copied := *c
		drop(&copied)
		return &copied
	}
	noAKI := func(c *x509.Certificate) { c.AuthorityKeyId = nil }
	noSKI := func(c *x509.Certificate) { c.SubjectKeyId = nil }
	for _, tc := range []struct {
		name     string
		chain    []*x509.Certificate
		wantText string // "" accepts
	}{
		{"control: the path untouched", []*x509.Certificate{leaf, inter.Cert, root.Cert}, ""},
		{"leaf without an authority key identifier", []*x509.Certificate{without(leaf, noAKI), inter.Cert, root.Cert}, "no authority key identifier"},
		{"intermediate without an authority key identifier", []*x509.Certificate{leaf, without(inter.Cert, noAKI), root.Cert}, "no authority key identifier"},
		{"intermediate without a subject key identifier", []*x509.Certificate{leaf, without(inter.Cert, noSKI), root.Cert}, "no subject key identifier"},
		{"root without a subject key identifier", []*x509.Certificate{leaf, inter.Cert, without(root.Cert, noSKI)}, "no subject key identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPath(tc.chain)
			if tc.wantText == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var perr *Error
			if !errors.As(err, &perr) || perr.Row != "PKI-14" || !strings.Contains(perr.Msg, tc.wantText) {
				t.Fatalf("got %v, want a PKI-14 refusal naming %q", err, tc.wantText)
			}
		})
	}
	if err := CheckRoot(without(root.Cert, noSKI)); err == nil {
		t.Error("CheckRoot accepted a root without a subject key identifier")
	}
}

// TestCheckTimestampChain (THREATS PKI-13): a timestamp authority's own
// certificate may not be a CA certificate; the control is the same chain
// with an end-entity certificate. (internal/policy.TestCompileTimestampChain
// has the roots and intermediates.)
func TestCheckTimestampChain(t *testing.T) {
	root, err := testsign.NewRootCA("tsa root", nil)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.NewIntermediate("tsa intermediate", nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Issue(key, "tsa@chartproof.test", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping} })
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTimestampChain(leaf, []*x509.Certificate{inter.Cert}, root.Cert); err != nil {
		t.Fatalf("control: %v", err)
	}
	var perr *Error
	if err := CheckTimestampChain(inter.Cert, nil, root.Cert); !errors.As(err, &perr) || perr.Row != "PKI-13" || !strings.Contains(perr.Msg, "is a CA certificate") {
		t.Fatalf("a CA certificate as the authority's own: %v; want a PKI-13 refusal", err)
	}
	if err := CheckTimestampChain(leaf, nil, nil); !errors.As(err, &perr) || perr.Row != "PKI-13" {
		t.Fatalf("no root: %v; want a PKI-13 refusal", err)
	}
}
