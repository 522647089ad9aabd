package testsign

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// HelmProvenanceMediaType is the media type of the provenance layer `helm
// push` writes.
const HelmProvenanceMediaType = "application/vnd.cncf.helm.chart.provenance.v1.prov"

// PGPKey is a throwaway OpenPGP key, as `gpg --quick-gen-key` makes one.
type PGPKey struct {
	Entity *openpgp.Entity
}

// PGPKeyOptions say how NewPGPKey makes a key. The zero value is an Ed25519
// key created now that never expires.
type PGPKeyOptions struct {
	// RSABits makes an RSA key (with an RSA subkey) of that size instead.
	RSABits int
	// Created is when the key was made; zero is now.
	Created time.Time
	// Lifetime makes the key expire that long after Created.
	Lifetime time.Duration
}

// NewPGPKey makes a key with one user ID.
func NewPGPKey(name string, o PGPKeyOptions) (*PGPKey, error) {
	config := &packet.Config{MinRSABits: 1024}
	if o.RSABits > 0 {
		config.Algorithm, config.RSABits = packet.PubKeyAlgoRSA, o.RSABits
	} else {
		config.Algorithm = packet.PubKeyAlgoEdDSA
	}
	if !o.Created.IsZero() {
		created := o.Created
		config.Time = func() time.Time { return created }
	}
	if o.Lifetime > 0 {
		config.KeyLifetimeSecs = uint32(o.Lifetime / time.Second)
	}
	e, err := openpgp.NewEntity(name, "", name+"@chartproof.invalid", config)
	if err != nil {
		return nil, err
	}
	return &PGPKey{Entity: e}, nil
}

// Fingerprint is the primary key's fingerprint, uppercase hex.
func (k *PGPKey) Fingerprint() string {
	return fmt.Sprintf("%X", k.Entity.PrimaryKey.Fingerprint)
}

// Revoke adds a revocation signature of the key itself (key compromised).
func (k *PGPKey) Revoke() error {
	return k.Entity.Revoke(packet.KeyCompromised, "compromised", nil)
}

// Retire adds a revocation signature saying the key was superseded: it
// revokes the key from now on, not what it signed before.
func (k *PGPKey) Retire() error {
	return k.Entity.Revoke(packet.KeySuperseded, "superseded", nil)
}

// ArmoredPublic is the public key, as `gpg --export --armor` writes it.
func (k *PGPKey) ArmoredPublic() string {
	return ArmoredKeyring(k)
}

// ArmoredKeyring is the public keys of keys, as one armored keyring.
func ArmoredKeyring(keys ...*PGPKey) string {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		panic(err)
	}
	for _, k := range keys {
		if err := k.Entity.Serialize(w); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.String()
}

// ProvenanceText is the text `helm package --sign` signs: the chart's
// metadata as YAML, a "..." line, and the archive's file entry.
func ProvenanceText(name, version, file string, archive []byte) []byte {
	sum := sha256.Sum256(archive)
	return fmt.Appendf(nil, "apiVersion: v2\nname: %s\nversion: %s\n\n...\nfiles:\n  %s: sha256:%s\n", name, version, file, hex.EncodeToString(sum[:]))
}

// ClearSignOptions change how ClearSign signs; the zero value signs as gpg
// does, with SHA-256, now, with the primary key.
type ClearSignOptions struct {
	Hash crypto.Hash
	// At is the signature's creation time; zero is now.
	At time.Time
	// Subkey signs with the key's first subkey instead of its primary key,
	// whatever that subkey's flags say.
	Subkey bool
}

// ClearSign makes a clearsigned message of text, as a .prov file is.
func (k *PGPKey) ClearSign(text []byte, o ClearSignOptions) ([]byte, error) {
	config := &packet.Config{DefaultHash: crypto.SHA256, MinRSABits: 1024}
	if o.Hash != 0 {
		config.DefaultHash = o.Hash
	}
	if !o.At.IsZero() {
		at := o.At
		config.Time = func() time.Time { return at }
	}
	priv := k.Entity.PrivateKey
	if o.Subkey {
		priv = k.Entity.Subkeys[0].PrivateKey
	}
	if o.Hash == crypto.SHA1 {
		return k.clearSignWeak(text, priv, config)
	}
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, priv, config)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// PushChartWithProvenance pushes a chart as `helm push` does when a .prov
// file lies beside the archive: config, chart layer and provenance layer.
func (r Registry) PushChartWithProvenance(repo, tag string, archive []byte, chartName, version string, prov []byte) (string, error) {
	config := []byte(fmt.Sprintf(`{"name":%q,"version":%q,"apiVersion":"v2"}`, chartName, version))
	return r.PushManifest(repo, tag, Manifest{
		Config: Blob{MediaType: HelmConfigMediaType, Data: config},
		Layers: []Blob{{MediaType: HelmChartMediaType, Data: archive}, {MediaType: HelmProvenanceMediaType, Data: prov}},
	})
}

// clearSignWeak makes a clearsigned message whose signature uses SHA-1,
// which go-crypto no longer writes (gpg does, with
// --personal-digest-preferences SHA1): it signs as ClearSign does, then
// signs the same text again with SHA-1 and swaps the Hash header and the
// signature.
func (k *PGPKey) clearSignWeak(text []byte, priv *packet.PrivateKey, config *packet.Config) ([]byte, error) {
	strong := *config
	strong.DefaultHash = crypto.SHA256
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, priv, &strong)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	block, _ := clearsign.Decode(buf.Bytes())
	if block == nil {
		return nil, fmt.Errorf("clearsign: cannot decode what it encoded")
	}
	sig := &packet.Signature{
		SigType:      packet.SigTypeText,
		PubKeyAlgo:   priv.PubKeyAlgo,
		Hash:         crypto.SHA1,
		CreationTime: config.Now(),
		IssuerKeyId:  &priv.KeyId,
	}
	h := crypto.SHA1.New()
	h.Write(block.Bytes) // already canonical text (CRLF line ends)
	weak, no := *config, false
	weak.NonDeterministicSignaturesViaNotation = &no // its salt has no SHA-1 length
	if err := sig.Sign(h, priv, &weak); err != nil {
		return nil, err
	}
	head, _, _ := bytes.Cut(buf.Bytes(), []byte("-----BEGIN PGP SIGNATURE-----"))
	head = bytes.Replace(head, []byte("Hash: SHA256"), []byte("Hash: SHA1"), 1)
	var out bytes.Buffer
	out.Write(head)
	aw, err := armor.Encode(&out, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	if err := sig.Serialize(aw); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
