package policy

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"time"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// Revoked is a policy's compiled revocation list: its inline entries and
// those of its ConfigMap together.
type Revoked struct {
	// KeyIDs are revoked keys (a key ID or an OpenPGP fingerprint).
	KeyIDs map[string]bool
	// Identities are revoked keyless signers.
	Identities []RevokedIdentity
	// Certificates are revoked certificates, by "issuer key ID/serial"
	// (PathCert's Issuer and Serial).
	Certificates map[string]bool
	// Digests are denied chart digests.
	Digests map[string]bool
}

// RevokedIdentity is a revoked signer: a certificate's issuer and subject;
// with After set, only what it signed at or after After.
type RevokedIdentity struct {
	Issuer, Subject string
	After           time.Time
}

// DefaultRevocationsKey is the ConfigMap key of a revocation list when its
// reference names none (the CRD's default).
const DefaultRevocationsKey = "revocations.yaml"

var (
	keyIDPattern  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	issuerPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	serialPattern = regexp.MustCompile(`^[0-9A-Fa-f]{1,40}$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// compileRevocations checks the inline list and the ConfigMap's, and merges
// them; nil when the policy revokes nothing.
func compileRevocations(ref Ref, spec *chartproofv1.Revocations, read Reader) (*Revoked, error) {
	if spec == nil {
		return nil, nil
	}
	r := &Revoked{KeyIDs: map[string]bool{}, Certificates: map[string]bool{}, Digests: map[string]bool{}}
	errs := r.add("revocations", spec.RevocationList)
	if cm := spec.ConfigMapRef; cm != nil {
		key := cm.Key
		if key == "" {
			key = DefaultRevocationsKey
		}
		b, where, err := readObjectKey(ref, "revocations", "configMap", cm.Namespace, cm.Name, key, read)
		if err != nil {
			return nil, err
		}
		list, err := parseRevocationList(b)
		if err != nil {
			return nil, fmt.Errorf("revocations in %s: %w", where, err)
		}
		errs = append(errs, r.add("revocations in "+where, list)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// parseRevocationList reads a revocation list as the API server would read
// the same fields: YAML or JSON, field names case-sensitive, no unknown or
// duplicate field (encoding/json alone would take "keyids" for "keyIDs").
func parseRevocationList(b []byte) (chartproofv1.RevocationList, error) {
	var list chartproofv1.RevocationList
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return list, err
	}
	strict, err := sigsjson.UnmarshalStrict(j, &list)
	if err != nil {
		return list, err
	}
	return list, errors.Join(strict...)
}

// add checks list's entries and adds them to r; what says where they are.
func (r *Revoked) add(what string, list chartproofv1.RevocationList) []error {
	var errs []error
	for _, k := range list.KeyIDs {
		if !keyIDPattern.MatchString(k) {
			errs = append(errs, fmt.Errorf("%s: key ID %q is not a lowercase hex sha256 (64 digits) or OpenPGP fingerprint (40 digits)", what, k))
			continue
		}
		r.KeyIDs[k] = true
	}
	for _, id := range list.Identities {
		if id.Issuer == "" || id.Subject == "" {
			errs = append(errs, fmt.Errorf("%s: an identity needs an issuer and a subject", what))
			continue
		}
		ri := RevokedIdentity{Issuer: id.Issuer, Subject: id.Subject}
		if id.SignedAfter != nil {
			ri.After = id.SignedAfter.Time
		}
		r.Identities = append(r.Identities, ri)
	}
	for _, c := range list.Certificates {
		serial, ok := new(big.Int).SetString(c.Serial, 16)
		if !issuerPattern.MatchString(c.Issuer) || !serialPattern.MatchString(c.Serial) || !ok {
			errs = append(errs, fmt.Errorf("%s: certificate %q/%q is not an issuer's key ID (the SHA-256 of its public key, 64 lowercase hex) and a hex serial number of at most 20 bytes", what, c.Issuer, c.Serial))
			continue
		}
		r.Certificates[c.Issuer+"/"+serial.Text(16)] = true
	}
	for _, d := range list.Digests {
		if !digestPattern.MatchString(d) {
			errs = append(errs, fmt.Errorf("%s: digest %q is not sha256:<64 lowercase hex>", what, d))
			continue
		}
		r.Digests[d] = true
	}
	return errs
}

// denies reports whether digest is denied.
func (r *Revoked) denies(digest string) bool {
	return r != nil && r.Digests[digest]
}

// signer says why s, a signature an authority verified, no longer counts:
// its key is revoked, or its certificate's identity is, at its verified
// signing time (unknown: revoked). "" when it still counts.
func (r *Revoked) signer(s Signature) string {
	if r == nil {
		return ""
	}
	for _, k := range []string{s.KeyID, s.Signer} {
		if k != "" && r.KeyIDs[k] {
			return "key " + k + " is revoked"
		}
	}
	certs := s.Chain
	if s.X509 != nil {
		certs = slices.Concat(certs, s.X509.Path, s.X509.Others)
	}
	for _, c := range certs {
		if r.Certificates[c.Issuer+"/"+c.Serial] {
			return fmt.Sprintf("certificate %q (serial %s, issuer %s) is revoked", c.Subject, c.Serial, c.Issuer)
		}
	}
	if s.Identity == nil {
		return ""
	}
	i := slices.IndexFunc(r.Identities, func(id RevokedIdentity) bool {
		return id.Issuer == s.Identity.Issuer && id.Subject == s.Identity.Subject &&
			(id.After.IsZero() || s.SignedAt.IsZero() || !s.SignedAt.Before(id.After))
	})
	switch {
	case i < 0:
		return ""
	case r.Identities[i].After.IsZero():
		return "signer " + s.Identity.String() + " is revoked"
	case s.SignedAt.IsZero():
		return fmt.Sprintf("signer %s is revoked from %s, and the signature has no verified signing time", s.Identity, r.Identities[i].After.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("signer %s is revoked from %s, and signed at %s", s.Identity, r.Identities[i].After.UTC().Format(time.RFC3339), s.SignedAt.UTC().Format(time.RFC3339))
}
