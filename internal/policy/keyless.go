package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/pki"
)

// MaxRegExpLength caps a regular expression of an identity, as the CRD does
// (MaxLength on issuerRegExp, subjectRegExp and extensions[].regExp).
const MaxRegExpLength = 1024

// DefaultTrustedRootKey is the ConfigMap or Secret key a trustedRoot
// reference reads when it names none (the CRD defaults it too).
const DefaultTrustedRootKey = "trusted_root.json"

// Extension names an identity may constrain: the JSON names of sigstore-go's
// certificate.Extensions, less the issuer (constrained by issuer itself).
// The CRD's enum lists the same names.
var ExtensionNames = []string{
	"githubWorkflowTrigger", "githubWorkflowSHA", "githubWorkflowName", "githubWorkflowRepository", "githubWorkflowRef",
	"buildSignerURI", "buildSignerDigest", "runnerEnvironment",
	"sourceRepositoryURI", "sourceRepositoryDigest", "sourceRepositoryRef", "sourceRepositoryIdentifier",
	"sourceRepositoryOwnerURI", "sourceRepositoryOwnerIdentifier",
	"buildConfigURI", "buildConfigDigest", "buildTrigger", "runInvocationURI", "sourceRepositoryVisibilityAtSigning",
}

// TrustRoot is a Sigstore trusted root an authority relies on: for a
// keyless authority its certificate authorities, logs and timestamp
// authorities; for a key authority that requires the transparency log, its
// logs and timestamp authorities.
type TrustRoot struct {
	// TrustedRoot is the parsed trusted root. Nil means the Sigstore
	// public-good root embedded in chartproof, which internal/verify
	// loads (this package reads no files and embeds nothing).
	TrustedRoot *root.TrustedRoot
	// RootDigest is "sha256:<hex>" of the trusted root's JSON; empty for the
	// embedded root. Authorities with the same digest share a verifier.
	RootDigest string
	// RootSource says where the trusted root came from, for messages.
	RootSource string
}

// Keyless is a keyless authority's trust material and identities.
type Keyless struct {
	TrustRoot
	// Identities are the compiled identities; a certificate matching any
	// one of them counts for the authority.
	Identities []Identity
}

// Identity is a compiled certificate identity: every part must match.
type Identity struct {
	Issuer  Matcher
	Subject Matcher
	// SubjectType, when set, is the kind of SAN the certificate must
	// carry ("email", "uri" or "otherName").
	SubjectType string
	Extensions  []ExtensionMatcher
}

// ExtensionMatcher checks one certificate extension by name.
type ExtensionMatcher struct {
	Name string
	Matcher
}

// Matcher matches a whole string exactly, or against an anchored RE2
// regular expression. The zero Matcher matches nothing.
type Matcher struct {
	exact string
	re    *regexp.Regexp
	src   string
}

// Match reports whether s matches: equal to the exact value, or matched in
// full by the regular expression.
func (m Matcher) Match(s string) bool {
	switch {
	case m.re != nil:
		return m.re.MatchString(s)
	case m.exact != "":
		return s == m.exact
	default:
		return false
	}
}

// String is the exact value, or the regular expression as written in the
// policy between slashes.
func (m Matcher) String() string {
	if m.re != nil {
		return "/" + m.src + "/"
	}
	return m.exact
}

// newMatcher compiles exactly one of exact and re. The expression is
// anchored: it must match the whole value. For an issuer or a subject
// (names), an expression that accepts anyone is refused (canaries).
func newMatcher(field, exact, re string, names bool) (Matcher, error) {
	switch {
	case exact != "" && re != "":
		return Matcher{}, fmt.Errorf("%s: set exactly one of the exact value and the regular expression, not both", field)
	case exact != "":
		return Matcher{exact: exact}, nil
	case re == "":
		return Matcher{}, fmt.Errorf("%s: no constraint: an identity must constrain both issuer and subject", field)
	case len(re) > MaxRegExpLength:
		return Matcher{}, fmt.Errorf("%s: regular expression of %d bytes exceeds %d", field, len(re), MaxRegExpLength)
	}
	// Compiled alone first: anchoring "a)|(b" as ^(?:a)|(b)$ would make
	// an alternation whose halves are anchored at one end only.
	if _, err := regexp.Compile(re); err != nil {
		return Matcher{}, fmt.Errorf("%s: %w", field, err)
	}
	compiled, err := regexp.Compile(`^(?:` + re + `)$`)
	if err != nil {
		return Matcher{}, fmt.Errorf("%s: %w", field, err)
	}
	if compiled.MatchString("") {
		// ".*" and the like: a pattern that accepts an empty value
		// constrains nothing worth naming.
		return Matcher{}, fmt.Errorf("%s: regular expression %q matches the empty string: it must constrain the value", field, re)
	}
	for _, c := range canaries {
		if names && compiled.MatchString(c) {
			return Matcher{}, fmt.Errorf("%s: regular expression %q accepts %q, a value no one trusts: it accepts any issuer or signer (THREATS POL-01); name the domain, organisation or repository", field, re, c)
		}
	}
	return Matcher{re: compiled, src: re}, nil
}

// canaries are values an attacker can get into a certificate (its own
// OIDC issuer, its own e-mail address, workflow or SPIFFE ID) and that no
// policy means to trust: a regular expression that accepts one of them
// accepts anyone (".+", ".*@.*", "https://.*", "[^@]+@[^@]+"), and is
// refused. The names are under .invalid, which no one can register.
var canaries = []string{
	"https://canary.chartproof.invalid",
	"https://canary.chartproof.invalid/.github/workflows/release.yaml@refs/heads/main",
	"canary@canary.chartproof.invalid",
	"spiffe://canary.chartproof.invalid/ns/canary/sa/canary",
	"canary",
}

// Match reports whether a certificate identity satisfies this identity.
func (id Identity) Match(c *CertIdentity) bool {
	if c == nil || !id.Issuer.Match(c.Issuer) || !id.Subject.Match(c.Subject) {
		return false
	}
	if id.SubjectType != "" && id.SubjectType != c.SubjectType {
		return false
	}
	for _, e := range id.Extensions {
		v, ok := c.Extensions[e.Name]
		if !ok || !e.Match(v) {
			return false
		}
	}
	return true
}

// String describes the identity for reasons: "issuer X subject Y".
func (id Identity) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "issuer %s subject %s", id.Issuer, id.Subject)
	if id.SubjectType != "" {
		fmt.Fprintf(&b, " (%s)", id.SubjectType)
	}
	for _, e := range id.Extensions {
		fmt.Fprintf(&b, " %s %s", e.Name, e.Matcher)
	}
	return b.String()
}

// Matches reports whether c satisfies any of the authority's identities. A
// key authority has none and matches no certificate.
func (a Authority) Matches(c *CertIdentity) bool {
	if a.Keyless == nil {
		return false
	}
	for _, id := range a.Keyless.Identities {
		if id.Match(c) {
			return true
		}
	}
	return false
}

// Reader reads the key material a policy refers to. The controller reads
// the API server, the CLI the documents of its policy file.
type Reader interface {
	// Secret returns one key of a Secret.
	Secret(ref chartproofv1.SecretKeyReference) ([]byte, error)
	// ConfigMap returns one key of a ConfigMap (data or binaryData).
	ConfigMap(namespace, name, key string) ([]byte, error)
}

// SecretReader returns the bytes of one key of a Secret. As a Reader it
// reads Secrets only and refuses every ConfigMap reference.
type SecretReader func(ref chartproofv1.SecretKeyReference) ([]byte, error)

// Secret calls f.
func (f SecretReader) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	if f == nil {
		return nil, errors.New("no Secrets can be read here")
	}
	return f(ref)
}

// ConfigMap refuses: a SecretReader reads no ConfigMaps.
func (f SecretReader) ConfigMap(namespace, name, key string) ([]byte, error) {
	return nil, fmt.Errorf("configMap %s/%s: no ConfigMaps can be read here", namespace, name)
}

// compileKeyless checks a keyless authority: its trusted root parses, each
// identity constrains both issuer and subject, and every expression
// compiles.
func compileKeyless(ref Ref, k chartproofv1.KeylessAuthority, read Reader) (*Keyless, error) {
	out := &Keyless{}
	var errs []error
	if tr, err := compileTrustRoot(ref, k.TrustedRoot, read, true); err != nil {
		errs = append(errs, err)
	} else {
		out.TrustRoot = tr
	}
	if len(k.Identities) == 0 {
		errs = append(errs, errors.New("keyless: no identities: an authority must name who may sign, never any signer"))
	}
	for i, in := range k.Identities {
		id, err := compileIdentity(in)
		if err != nil {
			errs = append(errs, fmt.Errorf("identities[%d]: %w", i, err))
			continue
		}
		out.Identities = append(out.Identities, id)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func compileIdentity(in chartproofv1.Identity) (Identity, error) {
	var errs []error
	issuer, err := newMatcher("issuer", in.Issuer, in.IssuerRegExp, true)
	if err != nil {
		errs = append(errs, err)
	}
	subject, err := newMatcher("subject", in.Subject, in.SubjectRegExp, true)
	if err != nil {
		errs = append(errs, err)
	}
	id := Identity{Issuer: issuer, Subject: subject, SubjectType: string(in.SubjectType)}
	switch in.SubjectType {
	case "", chartproofv1.SubjectTypeEmail, chartproofv1.SubjectTypeURI, chartproofv1.SubjectTypeOtherName:
	default:
		errs = append(errs, fmt.Errorf("subjectType %q is not one of email, uri, otherName", in.SubjectType))
	}
	seen := map[string]bool{}
	for _, e := range in.Extensions {
		switch {
		case !knownExtension(e.Name):
			errs = append(errs, fmt.Errorf("extension %q is not one of %s", e.Name, strings.Join(ExtensionNames, ", ")))
			continue
		case seen[e.Name]:
			errs = append(errs, fmt.Errorf("extension %q listed twice", e.Name))
			continue
		}
		seen[e.Name] = true
		m, err := newMatcher("extension "+e.Name, e.Value, e.RegExp, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id.Extensions = append(id.Extensions, ExtensionMatcher{Name: e.Name, Matcher: m})
	}
	return id, errors.Join(errs...)
}

func knownExtension(name string) bool {
	for _, n := range ExtensionNames {
		if n == name {
			return true
		}
	}
	return false
}

// compileTrustRoot reads and parses a trusted root (nil: the embedded
// public-good one). It must list a transparency log, and a certificate
// authority when needCA is set (keyless).
func compileTrustRoot(ref Ref, tr *chartproofv1.TrustedRootReference, read Reader, needCA bool) (TrustRoot, error) {
	if tr == nil {
		return TrustRoot{RootSource: "sigstore-public-good (embedded)"}, nil
	}
	out, err := parseTrustRoot(ref, *tr, read)
	switch {
	case err != nil && errors.Is(err, ErrTrustedRootUnavailable) && isPublicGoodTUF(tr):
		// The pinned fallback of an air-gapped cluster: the public-good
		// repository cannot be reached and nothing read from it verified
		// yet. Never when what it served did not verify (refused).
		return TrustRoot{RootSource: "sigstore-public-good (embedded: the public-good TUF repository could not be read)"}, nil
	case err != nil:
		return TrustRoot{}, err
	case needCA && len(out.TrustedRoot.FulcioCertificateAuthorities()) == 0:
		return TrustRoot{}, fmt.Errorf("trusted root %s lists no certificate authority", out.RootSource)
	case len(out.TrustedRoot.RekorLogs()) == 0:
		return TrustRoot{}, fmt.Errorf("trusted root %s lists no transparency log: the signatures it vouches for must be logged", out.RootSource)
	}
	return out, nil
}

// parseTrustRoot reads and parses a trusted root.
func parseTrustRoot(ref Ref, tr chartproofv1.TrustedRootReference, read Reader) (TrustRoot, error) {
	data, source, err := readTrustedRoot(ref, tr, read)
	if err != nil {
		return TrustRoot{}, err
	}
	parsed, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		// Not the parser's words: they quote the bytes they met, and a
		// TrustPolicy's author may point at a Secret they cannot read
		// themselves (THREATS TEN-07); this message reaches status.
		return TrustRoot{}, fmt.Errorf("trusted root %s is not a valid trusted_root.json", source)
	}
	for _, tsa := range parsed.TimestampingAuthorities() {
		if t, ok := tsa.(*root.SigstoreTimestampingAuthority); ok {
			if err := pki.CheckTimestampChain(t.Leaf, t.Intermediates, t.Root); err != nil {
				return TrustRoot{}, fmt.Errorf("trusted root %s: timestamp authority %s: %w", source, t.URI, err)
			}
		}
	}
	sum := sha256.Sum256(data)
	out := TrustRoot{TrustedRoot: parsed, RootDigest: "sha256:" + hex.EncodeToString(sum[:])}
	out.RootSource = source + " (" + out.RootDigest + ")"
	return out, nil
}

// readTrustedRoot reads the referenced ConfigMap or Secret key, applying the
// same namespace rules as a key's secretRef.
func readTrustedRoot(ref Ref, tr chartproofv1.TrustedRootReference, read Reader) ([]byte, string, error) {
	var (
		obj  *chartproofv1.TrustedRootKeyReference
		kind string
	)
	switch {
	case (tr.ConfigMapRef != nil && tr.SecretRef != nil) || (tr.TUF != nil && (tr.ConfigMapRef != nil || tr.SecretRef != nil)):
		return nil, "", errors.New("trustedRoot sets more than one of configMapRef, secretRef and tuf")
	case tr.TUF != nil:
		return readTUFRoot(ref, *tr.TUF, read)
	case tr.ConfigMapRef != nil:
		obj, kind = tr.ConfigMapRef, "configMap"
	case tr.SecretRef != nil:
		obj, kind = tr.SecretRef, "secret"
	default:
		return nil, "", errors.New("trustedRoot sets none of configMapRef, secretRef and tuf")
	}
	o := *obj
	if o.Key == "" {
		o.Key = DefaultTrustedRootKey
	}
	return readObjectKey(ref, "trusted root", kind, o.Namespace, o.Name, o.Key, read)
}

// readObjectKey reads one key of a ConfigMap (kind "configMap") or Secret
// (kind "secret") that a policy references, applying the namespace rule of
// references (resolveNamespace). It returns the bytes and a description of
// the source for messages; what names the reference in errors.
func readObjectKey(ref Ref, what, kind, namespace, name, key string, read Reader) ([]byte, string, error) {
	ns, err := resolveNamespace(ref, kind+"Ref", namespace, name)
	if err != nil {
		return nil, "", err
	}
	source := fmt.Sprintf("%s %s/%s key %q", kind, ns, name, key)
	if read == nil {
		return nil, "", fmt.Errorf("%s %s: nothing can be read here", what, source)
	}
	var data []byte
	if kind == "configMap" {
		data, err = read.ConfigMap(ns, name, key)
	} else {
		data, err = read.Secret(chartproofv1.SecretKeyReference{Namespace: ns, Name: name, Key: key})
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", what, source, err)
	}
	return data, source, nil
}

// resolveNamespace applies the namespace rule of references: a
// ClusterTrustPolicy names the namespace, a TrustPolicy uses its own.
func resolveNamespace(ref Ref, field, namespace, name string) (string, error) {
	switch {
	case ref.Kind == "ClusterTrustPolicy" && namespace == "":
		return "", fmt.Errorf("%s %q must name its namespace in a ClusterTrustPolicy", field, name)
	case ref.Kind == "TrustPolicy" && namespace != "" && namespace != ref.Namespace:
		return "", fmt.Errorf("%s %s/%s is outside the policy's namespace", field, namespace, name)
	case ref.Kind == "TrustPolicy":
		return ref.Namespace, nil
	}
	return namespace, nil
}
