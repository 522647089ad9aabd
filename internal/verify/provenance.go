package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgpecdsa "github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/yaml"

	"github.com/chartproof/chartproof/internal/policy"
)

// provenanceAuthority is a Helm provenance authority: the keys its
// fingerprints allow, and nothing else.
type provenanceAuthority struct {
	name    string
	keyring openpgp.EntityList
}

// Provenance checks a Helm provenance file (`helm package --sign`), read by
// the descriptor of the chart manifest's provenance layer, whose digest ref
// is. Only a file that is exactly one clearsigned message survives
// (THREATS PRV-04): it starts with the armor line, ends with the
// signature's armor, holds one Hash header naming SHA-256, SHA-384 or
// SHA-512 and one signature packet of that hash over the text, and has no
// carriage return anywhere. The signature must verify under an allowed key
// of a provenance authority, as of its own creation time (the key and the
// signing subkey valid, unexpired and unrevoked then, and still now, since
// that time is the signer's own claim; the signature neither in the future
// nor expired now; THREATS PRV-05). Only then is the signed
// text read, and only the text the signature covers: exactly two YAML
// documents separated by one "..." line, the chart's metadata and exactly
// one file entry with a sha256 hash, which becomes the signature's subject.
// Evaluate decides whether it describes the chart (PRV-03, PRV-07).
func (v *Verifier) Provenance(ref string, data []byte) policy.Signature {
	sig := v.checkProvenance(data)
	sig.Layout, sig.Ref = policy.LayoutHelmProvenance, ref
	return sig
}

// HasProvenance reports whether the verifier has a Helm provenance
// authority: only then is a chart's provenance layer worth reading.
func (v *Verifier) HasProvenance() bool { return len(v.provenanceAuthorities) > 0 }

func (v *Verifier) checkProvenance(data []byte) policy.Signature {
	block, sigPacket, err := parseClearsigned(data)
	if err != nil {
		return malformed("provenance: " + err.Error())
	}
	issuer := issuerKeyID(sigPacket)
	var problems []string
	for _, a := range v.provenanceAuthorities {
		if len(a.keyring.EntitiesById(issuer)) == 0 {
			continue // cheap pre-selection: the key ID the packet names
		}
		config := policy.ProvenanceConfig()
		_, signer, err := openpgp.VerifyDetachedSignature(a.keyring, bytes.NewReader(block.Bytes), bytes.NewReader(serialize(sigPacket)), config)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", a.name, err))
			continue
		}
		// go-crypto checked the key as of the signature's creation time,
		// which the signer chose: a .prov carries no trusted time. The key
		// must also be valid now, so a retired or expired key cannot sign
		// new files dated before it ended.
		key, ok := signer.SigningKeyById(time.Now(), issuer, config)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: the signing key %016X is expired or revoked now", a.name, issuer))
			continue
		}
		facts, subject, err := parseProvenanceText(block.Plaintext)
		if err != nil {
			return malformed("provenance: signed by an allowed key of " + a.name + ", but " + err.Error())
		}
		return policy.Signature{
			Authority:  a.name,
			KeyID:      policy.Fingerprint(signer.PrimaryKey),
			Signer:     signerKey(key.PublicKey),
			Subjects:   []string{subject},
			Provenance: facts,
		}
	}
	if len(problems) == 0 {
		return policy.Signature{Problem: fmt.Sprintf("provenance: signed by OpenPGP key ID %016X, which no authority allows", issuer)}
	}
	return policy.Signature{Problem: "provenance: " + strings.Join(problems, "; ")}
}

// parseClearsigned checks the framing of a clearsigned message and returns
// it with its one signature packet.
func parseClearsigned(data []byte) (*clearsign.Block, *packet.Signature, error) {
	const begin = "-----BEGIN PGP SIGNED MESSAGE-----\n"
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, nil, errors.New("empty file")
	case bytes.IndexByte(data, '\r') >= 0:
		return nil, nil, errors.New("carriage return in the file: `helm package --sign` writes LF line ends only")
	case !bytes.HasPrefix(data, []byte(begin)):
		return nil, nil, errors.New("the file does not start with the clearsigned message's armor line")
	}
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, nil, errors.New("not a clearsigned message")
	}
	if len(rest) > 0 {
		return nil, nil, fmt.Errorf("%d bytes after the signature's armor", len(rest))
	}
	if len(block.Headers) != 1 || len(block.Headers["Hash"]) != 1 {
		return nil, nil, errors.New("the message must have exactly one Hash header with one value")
	}
	want, ok := map[string]crypto.Hash{"SHA256": crypto.SHA256, "SHA384": crypto.SHA384, "SHA512": crypto.SHA512}[block.Headers.Get("Hash")]
	if !ok {
		return nil, nil, fmt.Errorf("Hash header %q is not SHA256, SHA384 or SHA512", block.Headers.Get("Hash"))
	}
	if block.ArmoredSignature.Type != "PGP SIGNATURE" || !onlyVersionHeaders(block.ArmoredSignature) {
		return nil, nil, errors.New("the signature armor is not a plain PGP SIGNATURE block")
	}
	body, err := io.ReadAll(io.LimitReader(block.ArmoredSignature.Body, 64<<10))
	if err != nil {
		return nil, nil, errors.New("the signature armor does not decode")
	}
	packets := packet.NewReader(bytes.NewReader(body))
	var sig *packet.Signature
	for {
		p, err := packets.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("signature packet: %v", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok || sig != nil {
			return nil, nil, errors.New("the signature armor must hold exactly one signature packet")
		}
		sig = s
	}
	switch {
	case sig == nil:
		return nil, nil, errors.New("the signature armor holds no signature packet")
	case sig.SigType != packet.SigTypeText:
		return nil, nil, fmt.Errorf("signature type %#x is not a text signature", sig.SigType)
	case sig.Hash != want:
		return nil, nil, fmt.Errorf("the signature uses %v, the Hash header says %v", sig.Hash, want)
	}
	return block, sig, nil
}

// onlyVersionHeaders reports whether the armor's headers are informational
// only (Version, Comment), as gpg may write them.
func onlyVersionHeaders(b *armor.Block) bool {
	for k := range b.Header {
		if k != "Version" && k != "Comment" {
			return false
		}
	}
	return true
}

// issuerKeyID is the key ID the signature names (go-crypto derives it from
// the issuer fingerprint subpacket too); 0, which no key has, when none.
func issuerKeyID(sig *packet.Signature) uint64 {
	if sig.IssuerKeyId != nil {
		return *sig.IssuerKeyId
	}
	return 0
}

// signerKey is the key ID cosign and notation signers get for the same key
// material: the lowercase hex sha256 of the signing key's PKIX encoding, so
// that one key used both as a cosign key and as an OpenPGP key counts as one
// signer. "" when the key has no PKIX form here (the fingerprint is the
// signer then).
func signerKey(k *packet.PublicKey) string {
	var pub any
	switch p := k.PublicKey.(type) {
	case *rsa.PublicKey:
		pub = p
	case *eddsa.PublicKey:
		if c, err := k.Curve(); err == nil && c == packet.Curve25519 && len(p.X) == ed25519.PublicKeySize {
			pub = ed25519.PublicKey(p.X)
		}
	case *pgpecdsa.PublicKey:
		switch c, _ := k.Curve(); c {
		case packet.CurveNistP256:
			pub = &ecdsa.PublicKey{Curve: elliptic.P256(), X: p.X, Y: p.Y}
		case packet.CurveNistP384:
			pub = &ecdsa.PublicKey{Curve: elliptic.P384(), X: p.X, Y: p.Y}
		}
	}
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func serialize(sig *packet.Signature) []byte {
	var buf bytes.Buffer
	if err := sig.Serialize(&buf); err != nil {
		return nil // verification then fails: no signature
	}
	return buf.Bytes()
}

// parseProvenanceText reads the signed text of a provenance file: the
// chart's metadata, a line "...", and exactly one file entry. It returns the
// facts and the entry's hash.
func parseProvenanceText(text []byte) (*policy.ProvenanceFacts, string, error) {
	parts := bytes.Split(text, []byte("\n...\n"))
	if len(parts) != 2 {
		return nil, "", fmt.Errorf("the signed text has %d parts separated by \"...\" lines, want 2 (Chart.yaml, files)", len(parts))
	}
	// Strictly, into Helm's own type: what `helm package --sign` writes
	// decodes, a duplicate or unknown key does not.
	var meta helmchart.Metadata
	if err := yaml.UnmarshalStrict(parts[0], &meta); err != nil {
		return nil, "", errors.New("the signed Chart.yaml copy is not the YAML of a chart's metadata (or repeats a key)")
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, "", errors.New("the signed Chart.yaml copy has no name or no version")
	}
	var sums struct {
		Files map[string]string `json:"files"`
	}
	if err := yaml.UnmarshalStrict(parts[1], &sums); err != nil {
		return nil, "", errors.New("the signed file list is not a YAML map of files only")
	}
	if len(sums.Files) != 1 {
		return nil, "", fmt.Errorf("the signed file list has %d entries, want exactly 1", len(sums.Files))
	}
	for file, sum := range sums.Files {
		if !strings.HasPrefix(sum, "sha256:") || !policy.CanonicalDigest(sum) {
			return nil, "", fmt.Errorf("the hash of %q is not sha256:<64 lowercase hex>", file)
		}
		return &policy.ProvenanceFacts{Name: meta.Name, Version: meta.Version, File: file}, sum, nil
	}
	panic("unreachable")
}
