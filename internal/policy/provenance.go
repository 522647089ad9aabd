package policy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// DefaultKeyringKey is the ConfigMap or Secret key a keyringRef reads when
// it names none.
const DefaultKeyringKey = "pubring.asc"

// maxKeyringEntities bounds the keys one keyring may hold.
const maxKeyringEntities = 64

// Provenance is a Helm provenance authority's trust material.
type Provenance struct {
	// Keyring holds the allowed keys only: the keyring's entities whose
	// primary key fingerprint is in Fingerprints. Nothing else is trusted.
	Keyring openpgp.EntityList
	// Fingerprints are the allowed primary key fingerprints, uppercase hex.
	Fingerprints []string
	// Source says where the keyring came from, for messages.
	Source string
}

// ProvenanceFacts is what a verified Helm provenance file says: the chart
// its copy of Chart.yaml names and the one file it vouches for. Its hash is
// the Signature's only subject.
type ProvenanceFacts struct {
	Name, Version string
	// File is the name of the file entry, `<name>-<version>.tgz` in a file
	// `helm package --sign` wrote.
	File string
}

// Fingerprint is the uppercase hex fingerprint of an OpenPGP public key, as
// gpg prints it.
func Fingerprint(k *packet.PublicKey) string {
	return strings.ToUpper(hex.EncodeToString(k.Fingerprint))
}

// compileProvenance reads the keyring of a Helm provenance authority and
// keeps the keys its fingerprints allow.
func compileProvenance(ref Ref, hp chartproofv1.HelmProvenanceAuthority, read Reader) (*Provenance, error) {
	var (
		armored []byte
		source  = "publicKeys"
	)
	switch {
	case hp.PublicKeys != "" && hp.KeyringRef != nil:
		return nil, errors.New("helmProvenance sets both publicKeys and keyringRef")
	case hp.PublicKeys != "":
		armored = []byte(hp.PublicKeys)
	case hp.KeyringRef != nil:
		data, src, err := readKeyring(ref, *hp.KeyringRef, read)
		if err != nil {
			return nil, err
		}
		armored, source = data, src
	default:
		return nil, errors.New("helmProvenance sets neither publicKeys nor keyringRef")
	}
	if len(hp.Fingerprints) == 0 {
		return nil, errors.New("helmProvenance lists no fingerprints: it would trust no key")
	}
	// Not the parser's words: a keyring from a Secret the policy's author
	// may not read must not be quoted into status (THREATS TEN-07).
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil || len(ring) == 0 {
		return nil, fmt.Errorf("helmProvenance keyring %s is not an ASCII-armored OpenPGP public keyring", source)
	}
	if len(ring) > maxKeyringEntities {
		return nil, fmt.Errorf("helmProvenance keyring %s holds %d keys, more than %d", source, len(ring), maxKeyringEntities)
	}
	byFingerprint := map[string]*openpgp.Entity{}
	for _, e := range ring {
		if e.PrivateKey != nil {
			return nil, fmt.Errorf("helmProvenance keyring %s holds private key material: give public keys only (gpg --export --armor)", source)
		}
		byFingerprint[Fingerprint(e.PrimaryKey)] = e
	}
	out := &Provenance{Source: source}
	var errs []error
	seen := map[string]bool{}
	for _, f := range hp.Fingerprints {
		fp := strings.ToUpper(f)
		if !validFingerprint(fp) {
			errs = append(errs, fmt.Errorf("helmProvenance fingerprint %q is not 40 or 64 hex digits", f))
			continue
		}
		if seen[fp] {
			errs = append(errs, fmt.Errorf("helmProvenance fingerprint %s listed twice", fp))
			continue
		}
		seen[fp] = true
		e, ok := byFingerprint[fp]
		if !ok {
			errs = append(errs, fmt.Errorf("helmProvenance fingerprint %s is not a primary key of keyring %s", fp, source))
			continue
		}
		if err := strongEnough(e.PrimaryKey); err != nil {
			errs = append(errs, fmt.Errorf("helmProvenance key %s: %w", fp, err))
			continue
		}
		out.Keyring = append(out.Keyring, e)
		out.Fingerprints = append(out.Fingerprints, fp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ProvenanceConfig is the OpenPGP configuration every provenance check uses:
// no RSA below MinRSABits, no DSA or ElGamal, and no SHA-1 (nor weaker) for
// the signature over the provenance file.
func ProvenanceConfig() *packet.Config {
	return &packet.Config{
		MinRSABits: MinRSABits,
		RejectPublicKeyAlgorithms: map[packet.PublicKeyAlgorithm]bool{
			packet.PubKeyAlgoDSA: true, packet.PubKeyAlgoElGamal: true,
		},
	}
}

// strongEnough refuses a primary key the verifier would refuse anyway, so
// the policy says so when it is applied rather than at every chart.
func strongEnough(k *packet.PublicKey) error {
	switch k.PubKeyAlgo {
	case packet.PubKeyAlgoDSA, packet.PubKeyAlgoElGamal:
		return fmt.Errorf("public key algorithm %d (DSA or ElGamal) is not accepted", k.PubKeyAlgo)
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		bits, err := k.BitLength()
		if err != nil || int(bits) < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is below %d", bits, MinRSABits)
		}
	}
	return nil
}

func validFingerprint(fp string) bool {
	if len(fp) != 40 && len(fp) != 64 {
		return false
	}
	for _, c := range fp {
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// readKeyring reads the referenced ConfigMap or Secret key, applying the
// same namespace rules as every other reference.
func readKeyring(ref Ref, kr chartproofv1.KeyringReference, read Reader) ([]byte, string, error) {
	var (
		obj  *chartproofv1.KeyringKeyReference
		kind string
	)
	switch {
	case kr.ConfigMapRef != nil && kr.SecretRef != nil:
		return nil, "", errors.New("keyringRef sets both configMapRef and secretRef")
	case kr.ConfigMapRef != nil:
		obj, kind = kr.ConfigMapRef, "configMap"
	case kr.SecretRef != nil:
		obj, kind = kr.SecretRef, "secret"
	default:
		return nil, "", errors.New("keyringRef sets neither configMapRef nor secretRef")
	}
	o := *obj
	if o.Key == "" {
		o.Key = DefaultKeyringKey
	}
	return readObjectKey(ref, "keyring", kind, o.Namespace, o.Name, o.Key, read)
}

// provenanceMismatch says why a verified provenance file does not describe
// the chart of ev, or "" when it does: its file entry must be
// `<name>-<version>.tgz` of its Chart.yaml copy, that name the repository's
// chart name (the last path segment, as the chart's own Chart.yaml must
// be), and, once the archive was read, name and version those of the
// archive's Chart.yaml (THREATS PRV-03, PRV-07). The hash is the subject,
// checked apart.
func provenanceMismatch(f *ProvenanceFacts, ev Evidence) string {
	switch {
	case f == nil:
		return "no provenance facts"
	case f.File != f.Name+"-"+f.Version+".tgz":
		return fmt.Sprintf("file entry %q is not %s-%s.tgz, the chart its Chart.yaml copy names", f.File, f.Name, f.Version)
	case f.Name != path.Base(ev.Repository):
		return fmt.Sprintf("Chart.yaml copy names chart %q, the repository %s holds %q", f.Name, ev.Repository, path.Base(ev.Repository))
	case ev.Chart != nil && (f.Name != ev.Chart.Name || f.Version != ev.Chart.Version):
		return fmt.Sprintf("Chart.yaml copy says %s %s, the chart archive says %s %s", f.Name, f.Version, ev.Chart.Name, ev.Chart.Version)
	}
	return ""
}
