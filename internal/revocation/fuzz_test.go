package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// FuzzFreshestCRL: the Freshest CRL extension of a CRL a distribution point
// served, whatever its bytes, returns URIs or an error, never a panic.
func FuzzFreshestCRL(f *testing.F) {
	// One distribution point naming a URI; a name relative to the issuer;
	// garbage.
	uri := "http://ca.test/delta.crl"
	n := byte(len(uri))
	one := append([]byte{0x30, n + 8, 0x30, n + 6, 0xa0, n + 4, 0xa0, n + 2, 0x86, n}, uri...)
	f.Add(one)
	f.Add([]byte("\x30\x06\x30\x04\xa0\x02\xa1\x00"))
	f.Add([]byte{0x30, 0x03, 0x30})
	if urls, err := freshestCRL(&x509.RevocationList{Extensions: []pkix.Extension{{Id: oidFreshestCRL, Value: one}}}); err != nil || len(urls) != 1 || urls[0] != uri {
		f.Fatalf("seed: %q, %v; want %q", urls, err, uri)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		rl := &x509.RevocationList{Extensions: []pkix.Extension{{Id: oidFreshestCRL, Value: value}}}
		if urls, err := freshestCRL(rl); err != nil && urls != nil {
			t.Fatalf("URIs %q beside an error %v", urls, err)
		}
	})
}
