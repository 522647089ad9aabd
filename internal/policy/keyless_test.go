package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	ghIssuer   = "https://token.actions.githubusercontent.com"
	ghWorkflow = "https://github.com/org/repo/.github/workflows/release.yaml@refs/tags/v1.2.3"
)

// objects is a policy.Reader over in-memory ConfigMaps and Secrets, keyed
// "namespace/name/key".
type objects map[string][]byte

func (o objects) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return o.get("secret", ref.Namespace, ref.Name, ref.Key)
}

func (o objects) ConfigMap(namespace, name, key string) ([]byte, error) {
	return o.get("configmap", namespace, name, key)
}

func (o objects) get(kind, namespace, name, key string) ([]byte, error) {
	b, ok := o[kind+":"+namespace+"/"+name+"/"+key]
	if !ok {
		return nil, errors.New("not found")
	}
	return b, nil
}

func trustedRootJSON(t *testing.T) []byte {
	t.Helper()
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keylessAuthority(name string, ids ...chartproofv1.Identity) chartproofv1.Authority {
	return chartproofv1.Authority{Name: name, Keyless: &chartproofv1.KeylessAuthority{
		TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}},
		Identities:  ids,
	}}
}

func TestCompileKeyless(t *testing.T) {
	rootJSON := trustedRootJSON(t)
	objs := objects{
		"configmap:ns/sigstore/trusted_root.json":    rootJSON,
		"configmap:ns/sigstore/other.json":           rootJSON,
		"secret:ns/sigstore/trusted_root.json":       rootJSON,
		"configmap:ns/broken/trusted_root.json":      []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"`),
		"configmap:infra/sigstore/trusted_root.json": rootJSON,
	}
	good := chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/org/repo/.*`}
	spec := func(auths ...chartproofv1.Authority) chartproofv1.TrustPolicySpec {
		return chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: auths}
	}
	withRoot := func(a chartproofv1.Authority, tr *chartproofv1.TrustedRootReference) chartproofv1.Authority {
		a.Keyless.TrustedRoot = tr
		return a
	}
	cm := func(ns, name, key string) *chartproofv1.TrustedRootReference {
		return &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Namespace: ns, Name: name, Key: key}}
	}
	tests := []struct {
		name   string
		kind   string
		spec   chartproofv1.TrustPolicySpec
		reader policy.Reader
		want   string // "" compiles
	}{
		{name: "control: configMap trusted root", spec: spec(keylessAuthority("gh", good))},
		{name: "control: configMap trusted root, other key", spec: spec(withRoot(keylessAuthority("gh", good), cm("", "sigstore", "other.json")))},
		{name: "control: secret trusted root", spec: spec(withRoot(keylessAuthority("gh", good), &chartproofv1.TrustedRootReference{SecretRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}}))},
		{name: "control: public-good root", spec: spec(withRoot(keylessAuthority("gh", good), nil)), reader: policy.SecretReader(nil)},
		{name: "control: cluster policy names the namespace", kind: "ClusterTrustPolicy", spec: spec(withRoot(keylessAuthority("gh", good), cm("infra", "sigstore", "")))},
		{name: "control: exact issuer and subject, extensions", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow,
			Extensions: []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI", Value: "https://github.com/org/repo"}, {Name: "githubWorkflowRef", RegExp: `refs/tags/v.*`}}}))},

		{name: "no identities: never any signer", spec: spec(keylessAuthority("gh")), want: "no identities"},
		{name: "identity without issuer", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Subject: ghWorkflow})), want: "issuer: no constraint"},
		{name: "identity without subject", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer})), want: "subject: no constraint"},
		{name: "issuer exact and regexp", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, IssuerRegExp: "x", Subject: ghWorkflow})), want: "issuer: set exactly one"},
		{name: "regexp does not compile", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `https://(`})), want: "missing closing )"},
		{name: "regexp matches everything", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `.*`})), want: "matches the empty string"},
		{name: "regexp escapes its anchors (POL-01)", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/org/repo/x)|(.*evil`})), want: "unexpected )"},
		{name: "subject regexp accepts anyone: .+ (POL-01)", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `.+`})), want: "accepts any issuer or signer"},
		{name: "subject regexp accepts any e-mail (POL-01)", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: "https://accounts.google.com", SubjectRegExp: `.*@.*`})), want: "accepts any issuer or signer"},
		{name: "subject regexp accepts any e-mail, spelled otherwise (POL-01)", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: "https://accounts.google.com", SubjectRegExp: `[^@]+@[^@]+`})), want: "accepts any issuer or signer"},
		{name: "issuer regexp accepts any issuer (POL-01)", spec: spec(keylessAuthority("gh", chartproofv1.Identity{IssuerRegExp: `https://.*`, Subject: ghWorkflow})), want: "accepts any issuer or signer"},
		{name: "control: an e-mail domain", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: "https://accounts.google.com", SubjectRegExp: `.+@example\.com`}))},
		{name: "control: the issuers of one provider", spec: spec(keylessAuthority("gh", chartproofv1.Identity{IssuerRegExp: `https://token\.actions\.githubusercontent\.com(/[a-z0-9-]+)?`, Subject: ghWorkflow}))},
		{name: "control: an extension regexp may accept any branch", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow,
			Extensions: []chartproofv1.ExtensionMatch{{Name: "githubWorkflowRef", RegExp: `refs/heads/.+`}}}))},
		{name: "regexp too long", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: strings.Repeat("a", policy.MaxRegExpLength+1)})), want: "exceeds"},
		{name: "unknown extension", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow,
			Extensions: []chartproofv1.ExtensionMatch{{Name: "issuer", Value: ghIssuer}}})), want: `extension "issuer" is not one of`},
		{name: "extension without a constraint", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow,
			Extensions: []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI"}}})), want: "extension sourceRepositoryURI: no constraint"},
		{name: "key and keyless", spec: spec(chartproofv1.Authority{Name: "both", Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["alice"]}, Keyless: &chartproofv1.KeylessAuthority{Identities: []chartproofv1.Identity{good}}}), want: "more than one of key, keyless"},
		{name: "trusted root missing", spec: spec(withRoot(keylessAuthority("gh", good), cm("", "absent", ""))), want: `configMap ns/absent key "trusted_root.json": not found`},
		{name: "trusted root does not parse", spec: spec(withRoot(keylessAuthority("gh", good), cm("", "broken", ""))), want: "trusted root configMap ns/broken"},
		{name: "trusted root from a reader of Secrets only", spec: spec(keylessAuthority("gh", good)), reader: policy.SecretReader(func(chartproofv1.SecretKeyReference) ([]byte, error) { return rootJSON, nil }), want: "no ConfigMaps can be read here"},
		{name: "cluster policy reference without namespace", kind: "ClusterTrustPolicy", spec: spec(keylessAuthority("gh", good)), want: "must name its namespace"},
		{name: "control: subjectType uri", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow, SubjectType: chartproofv1.SubjectTypeURI}))},
		{name: "unknown subjectType", spec: spec(keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow, SubjectType: "dns"})), want: `subjectType "dns" is not one of`},
		{name: "namespaced policy reference elsewhere", spec: spec(withRoot(keylessAuthority("gh", good), cm("infra", "sigstore", ""))), want: "outside the policy's namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == "" {
				kind = "TrustPolicy"
			}
			reader := tc.reader
			if reader == nil {
				reader = objs
			}
			p, err := policy.Compile(policy.Ref{Kind: kind, Namespace: "ns", Name: "p"}, tc.spec, reader)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Compile: %v, want no error", err)
			case tc.want == "":
				if p.Authorities[0].Keyless == nil || len(p.Authorities[0].Keyless.Identities) == 0 {
					t.Fatalf("compiled authority %+v, want keyless identities", p.Authorities[0])
				}
			case err == nil:
				t.Fatalf("Compile succeeded, want an error containing %q", tc.want)
			case !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Compile error = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func keylessSig(subject, issuer string, roots []string, exts map[string]string, subjects ...string) policy.Signature {
	return policy.Signature{
		Layout: policy.LayoutSigstoreBundle, Ref: "sha256:ref", Subjects: subjects, RootVerified: roots,
		Identity: &policy.CertIdentity{Issuer: issuer, Subject: subject, SubjectType: "uri", Extensions: exts},
	}
}

func withSANType(s policy.Signature, sanType string) policy.Signature {
	s.Identity.SubjectType = sanType
	return s
}

// TestKeyRequiresTransparencyLog: with requireTransparencyLog, a signature
// the key verifies counts only with a verified log entry, which the
// acceptance then names; without it, the same signature is NotLogged.
func TestKeyRequiresTransparencyLog(t *testing.T) {
	rootJSON := trustedRootJSON(t)
	objs := objects{"configmap:ns/sigstore/trusted_root.json": rootJSON, "configmap:ns/nolog/trusted_root.json": trustedRootWithoutLogs(t)}
	keyAuth := func(require bool, tr *chartproofv1.TrustedRootReference) chartproofv1.TrustPolicySpec {
		return chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{{
			Name: "alice", Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["alice"], RequireTransparencyLog: require, TrustedRoot: tr}}}}
	}
	cm := func(name string) *chartproofv1.TrustedRootReference {
		return &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: name}}
	}
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}

	for _, tc := range []struct {
		name string
		spec chartproofv1.TrustPolicySpec
		want string
	}{
		{name: "trustedRoot without requireTransparencyLog", spec: keyAuth(false, cm("sigstore")), want: "trustedRoot without requireTransparencyLog"},
		{name: "trusted root without a log", spec: keyAuth(true, cm("nolog")), want: "lists no transparency log"},
		{name: "trusted root missing", spec: keyAuth(true, cm("absent")), want: "not found"},
	} {
		t.Run("compile: "+tc.name, func(t *testing.T) {
			_, err := policy.Compile(ref, tc.spec, objs)
			if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile error = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}

	logged, err := policy.Compile(ref, keyAuth(true, cm("sigstore")), objs)
	if err != nil {
		t.Fatal(err)
	}
	if logged.Authorities[0].Log == nil || logged.Authorities[0].Log.TrustedRoot == nil {
		t.Fatalf("compiled authority %+v, want its log's trusted root", logged.Authorities[0])
	}
	publicGood, err := policy.Compile(ref, keyAuth(true, nil), objs)
	if err != nil || publicGood.Authorities[0].Log == nil || publicGood.Authorities[0].Log.TrustedRoot != nil {
		t.Fatalf("requireTransparencyLog without trustedRoot: %v, %+v; want the embedded root (nil)", err, publicGood)
	}
	plain := compile(t, keyAuth(false, nil))

	entry := policy.LogEntry{LogID: "abcd", Index: 7}
	signedAt := time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)
	withLog := signed("alice", digestA)
	withLog.Log, withLog.SignedAt = []policy.LogEntry{entry}, signedAt
	noLog := signed("alice", digestA)
	noLog.LogProblem = "no verified entry in a transparency log of configMap ns/sigstore"

	for _, tc := range []struct {
		name string
		p    *policy.Policy
		sig  policy.Signature
		want string
	}{
		{name: "control: logged signature", p: logged, sig: withLog, want: chartproofv1.ReasonVerified},
		{name: "signature the log does not record", p: logged, sig: noLog, want: chartproofv1.ReasonNotLogged},
		{name: "control: the same signature when the log is not required", p: plain, sig: noLog, want: chartproofv1.ReasonVerified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := policy.Evaluate(tc.p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{tc.sig}})
			if got := v.Code(); got != tc.want {
				t.Fatalf("Code() = %s (%s), want %s", got, v.Message(), tc.want)
			}
			switch {
			case tc.want == chartproofv1.ReasonNotLogged:
				if !strings.Contains(v.Reasons[0].Found, noLog.LogProblem) {
					t.Errorf("reason %+v: want the log problem in Found", v.Reasons[0])
				}
			case tc.p == logged:
				a := v.Accepted[0]
				if a.Log == nil || *a.Log != entry || a.SignedAt == nil || !a.SignedAt.Equal(signedAt) {
					t.Errorf("acceptance %+v: want log entry %+v signed at %s", a, entry, signedAt)
				}
			}
		})
	}
}

func trustedRootWithoutLogs(t *testing.T) []byte {
	t.Helper()
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEvaluateKeyless(t *testing.T) {
	rootJSON := trustedRootJSON(t)
	compileSpec := func(threshold int, auths ...chartproofv1.Authority) *policy.Policy {
		t.Helper()
		p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"},
			chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Threshold: threshold, Authorities: auths},
			objects{"configmap:ns/sigstore/trusted_root.json": rootJSON})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	release := chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/org/repo/\.github/workflows/release\.yaml@refs/tags/v.*`,
		Extensions: []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI", Value: "https://github.com/org/repo"}}}
	prefix := chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/org/repo/`}
	anyRepo := chartproofv1.Identity{IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, SubjectRegExp: `https://github\.com/org/.*`}
	exts := map[string]string{"sourceRepositoryURI": "https://github.com/org/repo"}
	gh := []string{"gh"}
	both := []string{"gh", "org"}

	one := compileSpec(1, keylessAuthority("gh", release))
	tests := []struct {
		name     string
		p        *policy.Policy
		sigs     []policy.Signature
		want     string
		wantAuth []string
	}{
		{name: "control: identity, extension and digest match", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, gh, exts, digestA)}, want: chartproofv1.ReasonVerified, wantAuth: []string{"gh"}},
		{name: "wrong issuer", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, "https://evil.example", gh, exts, digestA)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "issuer with a suffix", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer+".evil.example", gh, exts, digestA)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "subject injected after another URL (anchored at the start)", p: one,
			sigs: []policy.Signature{keylessSig("https://evil.example/?"+ghWorkflow, ghIssuer, gh, exts, digestA)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "subject longer than the prefix regexp (anchored at the end)", p: compileSpec(1, keylessAuthority("gh", prefix)),
			sigs: []policy.Signature{keylessSig("https://github.com/org/repo/.github/workflows/x.yaml@refs/heads/evil", ghIssuer, gh, nil, digestA)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "control: the prefix regexp's exact subject", p: compileSpec(1, keylessAuthority("gh", prefix)),
			sigs: []policy.Signature{keylessSig("https://github.com/org/repo/", ghIssuer, gh, nil, digestA)}, want: chartproofv1.ReasonVerified, wantAuth: []string{"gh"}},
		{name: "required extension missing", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, gh, nil, digestA)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "root verified by an authority not in this policy", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, []string{"mallory"}, exts, digestA)}, want: chartproofv1.ReasonUntrustedSigner},
		{name: "identity matches, digest does not", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, gh, exts, digestB)}, want: chartproofv1.ReasonSubjectMismatch},
		{name: "identity mismatch is reported before the digest", p: one,
			sigs: []policy.Signature{keylessSig(ghWorkflow, "https://evil.example", gh, exts, digestB)}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "control: untrusted and mismatched ones are ignored", p: one,
			sigs: []policy.Signature{
				{Layout: policy.LayoutSigstoreBundle, Ref: "sha256:x", Problem: "does not verify"},
				keylessSig(ghWorkflow, "https://evil.example", gh, exts, digestA),
				keylessSig(ghWorkflow, ghIssuer, gh, exts, digestA),
			}, want: chartproofv1.ReasonVerified, wantAuth: []string{"gh"}},
		{name: "one signer cannot satisfy two overlapping authorities (BND-04)", p: compileSpec(2, keylessAuthority("gh", release), keylessAuthority("org", anyRepo)),
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, both, exts, digestA), keylessSig(ghWorkflow, ghIssuer, both, exts, digestA)}, want: chartproofv1.ReasonThresholdNotMet},
		{name: "control: two signers for two overlapping authorities, in either order", p: compileSpec(2, keylessAuthority("gh", release), keylessAuthority("org", anyRepo)),
			sigs: []policy.Signature{
				keylessSig(ghWorkflow, ghIssuer, both, exts, digestA),
				keylessSig("https://github.com/org/other/.github/workflows/ci.yaml@refs/heads/main", ghIssuer, both, nil, digestA),
			}, want: chartproofv1.ReasonVerified, wantAuth: []string{"gh", "org"}},
		{name: "control: keyed and keyless authorities together", p: compileSpec(2, keylessAuthority("gh", release), chartproofv1.Authority{Name: "alice", Key: &chartproofv1.KeyAuthority{PublicKey: pemFor["alice"]}}),
			sigs: []policy.Signature{keylessSig(ghWorkflow, ghIssuer, gh, exts, digestA), signed("alice", digestA)}, want: chartproofv1.ReasonVerified, wantAuth: []string{"alice", "gh"}},
		{name: "subject of another SAN type (subjectType uri, email SAN)", p: compileSpec(1, keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: "ci@org.example", SubjectType: chartproofv1.SubjectTypeURI})),
			sigs: []policy.Signature{withSANType(keylessSig("ci@org.example", ghIssuer, gh, nil, digestA), "email")}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "control: subject of the SAN type named (subjectType uri, URI SAN)", p: compileSpec(1, keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: "ci@org.example", SubjectType: chartproofv1.SubjectTypeURI})),
			sigs: []policy.Signature{keylessSig("ci@org.example", ghIssuer, gh, nil, digestA)}, want: chartproofv1.ReasonVerified, wantAuth: []string{"gh"}},
		{name: "a key signature is not a keyless identity", p: one,
			sigs: []policy.Signature{signed("gh", digestA)}, want: chartproofv1.ReasonUntrustedSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := policy.Evaluate(tc.p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: tc.sigs})
			if got := v.Code(); got != tc.want {
				t.Fatalf("Code() = %s (%s), want %s", got, v.Message(), tc.want)
			}
			var auths []string
			for _, a := range v.Accepted {
				auths = append(auths, a.Authority)
			}
			if strings.Join(auths, ",") != strings.Join(tc.wantAuth, ",") {
				t.Errorf("accepted %v, want %v", auths, tc.wantAuth)
			}
			if tc.want == chartproofv1.ReasonIdentityMismatch {
				r := v.Reasons[0]
				if !strings.Contains(r.Expected, "issuer "+ghIssuer) || r.Found == "" {
					t.Errorf("reason %+v: want the expected identities and the identity found", r)
				}
				if strings.Contains(tc.name, "SAN type") && !strings.Contains(r.Expected, "(uri)") || !strings.Contains(r.Found, "(uri, ") && !strings.Contains(r.Found, "(email, ") {
					t.Errorf("reason %+v: want the SAN types named", r)
				}
			}
		})
	}
}

// TestEvaluateCapsSignatures: past the cap, signatures are not examined,
// even a good one.
func TestEvaluateCapsSignatures(t *testing.T) {
	p := compile(t, keySpec(1, "", "alice"))
	var sigs []policy.Signature
	for range policy.MaxSignatures {
		sigs = append(sigs, policy.Signature{Layout: policy.LayoutSigstoreBundle, Ref: "sha256:x", Problem: "does not verify"})
	}
	for _, tc := range []struct {
		name string
		sigs []policy.Signature
		want string
	}{
		{"one past the cap is not examined", append(append([]policy.Signature{}, sigs...), signed("alice", digestA)), chartproofv1.ReasonUntrustedSigner},
		{"control: the last within the cap is", append(append([]policy.Signature{}, sigs[1:]...), signed("alice", digestA)), chartproofv1.ReasonVerified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: tc.sigs}).Code(); got != tc.want {
				t.Fatalf("Code() = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestFingerprint: the fingerprint changes with anything the policy trusts
// — its identity (UID), its spec, and the bytes of a Secret or ConfigMap it
// reads — and with nothing else.
func TestFingerprint(t *testing.T) {
	rootJSON := trustedRootJSON(t)
	otherRoot := trustedRootJSON(t)
	spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{
		keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow}),
		{Name: "alice", Key: &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "alice"}}},
	}}
	objs := objects{"configmap:ns/sigstore/trusted_root.json": rootJSON, "secret:ns/alice/cosign.pub": []byte(pemFor["alice"])}
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p", UID: "uid-1"}
	fp := func(ref policy.Ref, spec chartproofv1.TrustPolicySpec, objs objects) string {
		t.Helper()
		p, err := policy.Compile(ref, spec, objs)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Fingerprint) != 64 {
			t.Fatalf("fingerprint %q is not a sha256", p.Fingerprint)
		}
		return p.Fingerprint
	}
	base := fp(ref, spec, objs)
	if again := fp(ref, spec, objects{"configmap:ns/sigstore/trusted_root.json": rootJSON, "secret:ns/alice/cosign.pub": []byte(pemFor["alice"])}); again != base {
		t.Errorf("the same policy compiled twice: %s and %s", base, again)
	}
	recreated := ref
	recreated.UID = "uid-2"
	threshold := spec
	threshold.Threshold = 2
	for name, got := range map[string]string{
		"another UID (deleted and recreated)": fp(recreated, spec, objs),
		"another spec":                        fp(ref, threshold, objs),
		"another key in the Secret":           fp(ref, spec, objects{"configmap:ns/sigstore/trusted_root.json": rootJSON, "secret:ns/alice/cosign.pub": []byte(pemFor["bob"])}),
		"another trusted root":                fp(ref, spec, objects{"configmap:ns/sigstore/trusted_root.json": otherRoot, "secret:ns/alice/cosign.pub": []byte(pemFor["alice"])}),
	} {
		if got == base {
			t.Errorf("%s: same fingerprint %s", name, got)
		}
	}
}
