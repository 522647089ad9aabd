package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// MinRSABits is the smallest RSA modulus a key authority may have.
const MinRSABits = 2048

// Ref identifies the policy object a Policy was compiled from. It is part of
// every verdict, and of every cache key that depends on the policy.
type Ref struct {
	Kind      string // TrustPolicy or ClusterTrustPolicy
	Namespace string // empty for a ClusterTrustPolicy
	Name      string
	UID       string // empty outside a cluster (CLI)
}

// String is "TrustPolicy ns/name" or "ClusterTrustPolicy name".
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Policy is a trust policy with its key material parsed and checked.
type Policy struct {
	Ref          Ref
	Repositories []string
	// SignatureRepositories are the globs of the repositories a release
	// may read its signatures from instead of its chart's.
	SignatureRepositories []string
	Authorities           []Authority
	Threshold             int
	Mode                  chartproofv1.Mode
	// Revoked lists the signers whose signatures no longer count and the
	// digests denied; nil revokes nothing.
	Revoked *Revoked
	// MaxSignatureAge, when not zero, is how old a signature's verified
	// signing time may be for it to count.
	MaxSignatureAge time.Duration
	// MinChartVersion, when set, is the oldest chart version admitted.
	MinChartVersion *semver.Version
	// Attestations are the attestations a chart must carry, in order.
	Attestations []Attestation
	// Fingerprint is the lowercase hex sha256 of everything the policy was
	// compiled from: its Ref (with the UID), its spec, and every Secret and
	// ConfigMap key it read. Two policies with the same fingerprint trust
	// exactly the same signers; a cache of what a policy's verifier
	// established is keyed by it, so any change of trust misses at once.
	Fingerprint string
}

// Authority is a trusted signer with its parsed trust material: a public
// key, or (Keyless set) a trusted root and identities.
type Authority struct {
	Name string
	// PublicKey is an *ecdsa.PublicKey (P-256, P-384), ed25519.PublicKey or
	// *rsa.PublicKey (>= MinRSABits). Nil for a keyless authority.
	PublicKey any
	// KeyID is the lowercase hex sha256 of the key's PKIX DER encoding.
	KeyID string
	// Keyless is set for a keyless authority.
	Keyless *Keyless
	// Log is set for a key authority that requires the transparency log
	// (requireTransparencyLog): the trusted root whose logs count.
	Log *TrustRoot
	// ValidFrom and ValidUntil bound when a key authority's key may sign
	// (validFor); zero means unbounded. Only with Log, the source of a
	// trusted signing time.
	ValidFrom, ValidUntil time.Time
	// Provenance is set for a Helm provenance authority: OpenPGP keys that
	// sign provenance files. PublicKey and KeyID are then empty.
	Provenance *Provenance
	// Notation is set for a Notation authority: a trust store and trusted
	// identities. PublicKey and KeyID are then empty.
	Notation *Notation
	// X509 is set for an x509 authority: a PKI's roots and the identities
	// its leaves may name. PublicKey and KeyID are then empty.
	X509 *X509
}

// Authority returns the authority named name, nil when there is none: one
// of the policy's, or of an attestation requirement's own ("<requirement>/<name>").
func (p *Policy) Authority(name string) *Authority {
	for i := range p.Authorities {
		if p.Authorities[i].Name == name {
			return &p.Authorities[i]
		}
	}
	for _, a := range p.Attestations {
		for i := range a.Authorities {
			if a.Authorities[i].Name == name {
				return &a.Authorities[i]
			}
		}
	}
	return nil
}

// ErrInvalid marks a policy that cannot be used. Compile's errors wrap it.
var ErrInvalid = errors.New("invalid policy")

// Compile checks a TrustPolicySpec and parses its keys, trusted roots and
// identities; read resolves its Secret and ConfigMap references (nil reads
// nothing; a SecretReader reads Secrets only). Every problem is reported,
// wrapped in ErrInvalid; nothing is defaulted silently except what the CRD
// defaults too (threshold 1, mode Enforce, the trusted root's key).
func Compile(ref Ref, spec chartproofv1.TrustPolicySpec, read Reader) (*Policy, error) {
	p := &Policy{Ref: ref, Threshold: spec.Threshold, Mode: spec.Mode}
	fp := sha256.New()
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, ref, err)
	}
	for _, part := range [][]byte{[]byte(ref.Kind), []byte(ref.Namespace), []byte(ref.Name), []byte(ref.UID), specJSON} {
		writeField(fp, part)
	}
	if read != nil {
		read = hashingReader{read: read, h: fp}
	}
	defer func() { p.Fingerprint = hex.EncodeToString(fp.Sum(nil)) }()
	var errs []error
	if p.Threshold == 0 {
		p.Threshold = 1
	}
	if p.Mode == "" {
		p.Mode = chartproofv1.ModeEnforce
	}
	if p.Mode != chartproofv1.ModeEnforce && p.Mode != chartproofv1.ModeAudit {
		errs = append(errs, fmt.Errorf("mode %q is neither Enforce nor Audit", p.Mode))
	}
	if spec.NamespaceSelector != nil {
		if ref.Kind != "ClusterTrustPolicy" {
			errs = append(errs, errors.New("namespaceSelector: only a ClusterTrustPolicy may be mandatory for namespaces"))
		} else if _, err := Binds(spec, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if len(spec.Repositories) == 0 {
		errs = append(errs, errors.New("no repositories: a policy must say which charts it covers"))
	}
	for _, r := range spec.Repositories {
		if err := checkGlob(r); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Repositories = append(p.Repositories, r)
	}
	for _, r := range spec.SignatureRepositories {
		if err := checkGlob(r); err != nil {
			errs = append(errs, fmt.Errorf("signatureRepositories: %w", err))
			continue
		}
		p.SignatureRepositories = append(p.SignatureRepositories, r)
	}
	if len(spec.Authorities) == 0 {
		errs = append(errs, errors.New("no authorities"))
	}
	for _, a := range spec.Authorities {
		if strings.Contains(a.Name, "/") {
			// "/" names an attestation requirement's own authorities.
			errs = append(errs, fmt.Errorf("authority %q: a name may not contain /", a.Name))
		}
	}
	auths, aerrs := compileAuthorities(ref, spec.Authorities, read)
	p.Authorities = auths
	errs = append(errs, aerrs...)
	if p.Revoked, err = compileRevocations(ref, spec.Revocations, read); err != nil {
		errs = append(errs, err)
	}
	if err := compileFreshness(p, spec.Freshness); err != nil {
		errs = append(errs, err)
	}
	atts, aerrs := compileAttestations(ref, spec.Attestations, read)
	p.Attestations = atts
	errs = append(errs, aerrs...)
	if p.Threshold < 1 {
		errs = append(errs, fmt.Errorf("threshold %d is below 1", p.Threshold))
	} else if p.Threshold > len(spec.Authorities) {
		errs = append(errs, fmt.Errorf("threshold %d exceeds the %d authorities", p.Threshold, len(spec.Authorities)))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, ref, errors.Join(errs...))
	}
	return p, nil
}

// compileAuthorities compiles a list of authorities: names unique, one key
// (or OpenPGP key) one authority.
func compileAuthorities(ref Ref, specs []chartproofv1.Authority, read Reader) ([]Authority, []error) {
	var (
		out  []Authority
		errs []error
	)
	seen := map[string]bool{}
	keyOf := map[string]string{} // KeyID, or OpenPGP fingerprint -> the authority that has it
	for _, a := range specs {
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("authority %q listed twice", a.Name))
			continue
		}
		seen[a.Name] = true
		auth, err := compileAuthority(ref, a, read)
		if err != nil {
			errs = append(errs, fmt.Errorf("authority %q: %w", a.Name, err))
			continue
		}
		if auth.Provenance != nil {
			var dups []error
			for _, fp := range auth.Provenance.Fingerprints {
				if other, dup := keyOf["pgp:"+fp]; dup {
					dups = append(dups, fmt.Errorf("authority %q has the OpenPGP key %s of authority %q: one key, one authority", a.Name, fp, other))
				}
				keyOf["pgp:"+fp] = a.Name
			}
			if len(dups) > 0 {
				errs = append(errs, dups...)
				continue
			}
			out = append(out, auth)
			continue
		}
		if auth.Notation != nil || auth.X509 != nil {
			out = append(out, auth)
			continue
		}
		if other, dup := keyOf[auth.KeyID]; dup && auth.Keyless == nil {
			// A key verifies a signature for one authority only: a second
			// authority with the same key could never count.
			errs = append(errs, fmt.Errorf("authority %q has the key of authority %q: one key, one authority", a.Name, other))
			continue
		}
		if auth.Keyless == nil {
			keyOf[auth.KeyID] = a.Name
		}
		out = append(out, auth)
	}
	return out, errs
}

// validAt reports whether a key authority's key may sign at t: inside
// [ValidFrom, ValidUntil], both ends included, a zero bound open.
func (a Authority) validAt(t time.Time) bool {
	return (a.ValidFrom.IsZero() || !t.Before(a.ValidFrom)) && (a.ValidUntil.IsZero() || !t.After(a.ValidUntil))
}

// writeField writes b to h with its length first, so that fields cannot run
// into each other.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// hashingReader passes reads through, and hashes what each one named and
// returned (or that it failed) into the policy's fingerprint.
type hashingReader struct {
	read Reader
	h    hash.Hash
}

func (r hashingReader) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	b, err := r.read.Secret(ref)
	r.record("secret", ref.Namespace, ref.Name, ref.Key, b, err)
	return b, err
}

func (r hashingReader) ConfigMap(namespace, name, key string) ([]byte, error) {
	b, err := r.read.ConfigMap(namespace, name, key)
	r.record("configmap", namespace, name, key, b, err)
	return b, err
}

// TUFTrustedRoot passes the read to the reader's TUF client, and hashes the
// trusted root it verified (or that it failed).
func (r hashingReader) TUFTrustedRoot(repo TUFRepository) (TUFTrustedRoot, error) {
	got, err := readTUF(r.read, repo)
	r.record("tuf", repo.Location, "", "trusted_root.json", got.JSON, err)
	return got, err
}

func (r hashingReader) record(kind, namespace, name, key string, b []byte, err error) {
	for _, f := range []string{kind, namespace, name, key} {
		writeField(r.h, []byte(f))
	}
	if err != nil {
		b = []byte("error")
	}
	writeField(r.h, b)
}

func compileAuthority(ref Ref, a chartproofv1.Authority, read Reader) (Authority, error) {
	kinds := 0
	for _, set := range []bool{a.Key != nil, a.Keyless != nil, a.X509 != nil, a.HelmProvenance != nil, a.Notation != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return Authority{}, errors.New("sets more than one of key, keyless, x509, helmProvenance and notation: an authority needs exactly one kind of trust material")
	case a.X509 != nil:
		x, err := compileX509(ref, *a.X509, read)
		if err != nil {
			return Authority{}, err
		}
		x.Revocation.Owner = ref.String() + " authority " + a.Name
		return Authority{Name: a.Name, X509: x}, nil
	case a.Notation != nil:
		n, err := compileNotation(ref, a.Name, *a.Notation, read)
		if err != nil {
			return Authority{}, err
		}
		return Authority{Name: a.Name, Notation: n}, nil
	case a.HelmProvenance != nil:
		hp, err := compileProvenance(ref, *a.HelmProvenance, read)
		if err != nil {
			return Authority{}, err
		}
		return Authority{Name: a.Name, Provenance: hp}, nil
	case a.Keyless != nil:
		k, err := compileKeyless(ref, *a.Keyless, read)
		if err != nil {
			return Authority{}, err
		}
		return Authority{Name: a.Name, Keyless: k}, nil
	case a.Key == nil:
		return Authority{}, errors.New("no key, keyless, x509, helmProvenance or notation: an authority needs exactly one kind of trust material")
	}
	var pemBytes []byte
	switch {
	case a.Key.PublicKey != "" && a.Key.SecretRef != nil:
		return Authority{}, errors.New("key sets both publicKey and secretRef")
	case a.Key.PublicKey != "":
		pemBytes = []byte(a.Key.PublicKey)
	case a.Key.SecretRef != nil:
		sr := *a.Key.SecretRef
		if sr.Key == "" {
			sr.Key = "cosign.pub"
		}
		ns, err := resolveNamespace(ref, "secretRef", sr.Namespace, sr.Name)
		if err != nil {
			return Authority{}, err
		}
		sr.Namespace = ns
		if read == nil {
			return Authority{}, fmt.Errorf("secretRef %s/%s: no secrets available", sr.Namespace, sr.Name)
		}
		b, err := read.Secret(sr)
		if err != nil {
			return Authority{}, fmt.Errorf("secretRef %s/%s key %q: %w", sr.Namespace, sr.Name, sr.Key, err)
		}
		pemBytes = b
	default:
		return Authority{}, errors.New("key sets neither publicKey nor secretRef")
	}
	pub, keyID, err := ParsePublicKey(pemBytes)
	if err != nil {
		return Authority{}, err
	}
	out := Authority{Name: a.Name, PublicKey: pub, KeyID: keyID}
	switch {
	case a.Key.TrustedRoot != nil && !a.Key.RequireTransparencyLog:
		return Authority{}, errors.New("key sets trustedRoot without requireTransparencyLog: true")
	case a.Key.RequireTransparencyLog:
		tr, err := compileTrustRoot(ref, a.Key.TrustedRoot, read, false)
		if err != nil {
			return Authority{}, err
		}
		out.Log = &tr
	}
	if w := a.Key.ValidFor; w != nil {
		switch {
		case out.Log == nil:
			return Authority{}, errors.New("key sets validFor without requireTransparencyLog: true: a validity window needs a trusted signing time")
		case w.Start.IsZero():
			return Authority{}, errors.New("key validFor has no start")
		case w.End != nil && w.End.Before(&w.Start):
			return Authority{}, errors.New("key validFor ends before it starts")
		}
		out.ValidFrom = w.Start.UTC()
		if w.End != nil {
			out.ValidUntil = w.End.UTC()
		}
	}
	return out, nil
}

// ParsePublicKey parses one PEM "PUBLIC KEY" block and checks that the key is
// of an accepted type and strength. It returns the key and its KeyID.
func ParsePublicKey(pemBytes []byte) (any, string, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", errors.New("public key: no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		// The block's type is not quoted: it comes from the Secret.
		return nil, "", errors.New("public key: the PEM block is not a PUBLIC KEY")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, "", errors.New("public key: data after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("public key: %w", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, "", fmt.Errorf("public key: ECDSA curve %s is not P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, "", fmt.Errorf("public key: RSA key of %d bits is below %d", k.N.BitLen(), MinRSABits)
		}
	default:
		return nil, "", fmt.Errorf("public key: type %T is not accepted", pub)
	}
	sum := sha256.Sum256(block.Bytes)
	return pub, hex.EncodeToString(sum[:]), nil
}
