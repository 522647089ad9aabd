package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	pgpecdsa "github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/chartproof/chartproof/internal/policy"
)

// TestSignerKeyAgreesWithKeyID: an OpenPGP key's signer ID is the key ID a
// key authority gives the same key material, so one key signing both a
// cosign signature and a .prov counts once toward a threshold.
func TestSignerKeyAgreesWithKeyID(t *testing.T) {
	keyID := func(std any) string {
		der, err := x509.MarshalPKIXPublicKey(std)
		if err != nil {
			t.Fatal(err)
		}
		_, id, err := policy.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := signerKey(packet.NewRSAPublicKey(time.Now(), &rsaKey.PublicKey)), keyID(&rsaKey.PublicKey); got != want {
		t.Errorf("rsa: signerKey = %q, want the key authority's KeyID %q", got, want)
	}
	for _, c := range []struct {
		algo  packet.PublicKeyAlgorithm
		curve packet.Curve
	}{{packet.PubKeyAlgoEdDSA, packet.Curve25519}, {packet.PubKeyAlgoECDSA, packet.CurveNistP256}, {packet.PubKeyAlgoECDSA, packet.CurveNistP384}} {
		e, err := openpgp.NewEntity("k", "", "k@chartproof.invalid", &packet.Config{Algorithm: c.algo, Curve: c.curve})
		if err != nil {
			t.Fatal(err)
		}
		var std any
		switch p := e.PrimaryKey.PublicKey.(type) {
		case *eddsa.PublicKey:
			std = ed25519.PublicKey(p.X)
		case *pgpecdsa.PublicKey:
			curve := elliptic.P256()
			if c.curve == packet.CurveNistP384 {
				curve = elliptic.P384()
			}
			std = &ecdsa.PublicKey{Curve: curve, X: p.X, Y: p.Y}
		default:
			t.Fatalf("%s: key of type %T", c.curve, p)
		}
		if got, want := signerKey(e.PrimaryKey), keyID(std); got != want {
			t.Errorf("%s: signerKey = %q, want the key authority's KeyID %q", c.curve, got, want)
		}
	}
}
