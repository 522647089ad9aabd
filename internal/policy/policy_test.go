package policy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	repo    = "registry.example.com/team/app"
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func mustKey(t *testing.T, kind string) *testsign.Key {
	t.Helper()
	k, err := testsign.NewKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func compile(t *testing.T, spec chartproofv1.TrustPolicySpec) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, nil)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func keySpec(threshold int, mode chartproofv1.Mode, names ...string) chartproofv1.TrustPolicySpec {
	spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Threshold: threshold, Mode: mode}
	for _, n := range names {
		spec.Authorities = append(spec.Authorities, chartproofv1.Authority{Name: n, Key: &chartproofv1.KeyAuthority{PublicKey: pemFor[n]}})
	}
	return spec
}

var pemFor = map[string]string{}

func TestMain(m *testing.M) {
	for _, n := range []string{"alice", "bob", "carol"} {
		k, err := testsign.NewKey("p256")
		if err != nil {
			panic(err)
		}
		pemFor[n] = k.PublicPEM()
	}
	m.Run()
}

func signed(authority string, subjects ...string) policy.Signature {
	return policy.Signature{Layout: policy.LayoutCosignLegacy, Ref: "sha256:sig", Authority: authority, KeyID: "id-" + authority, Subjects: subjects}
}

func TestEvaluate(t *testing.T) {
	untrusted := policy.Signature{Layout: policy.LayoutSigstoreBundle, Ref: "sha256:x", Problem: "does not verify"}
	broken := policy.Signature{Layout: policy.LayoutCosignLegacy, Ref: "sha256:y", Malformed: true, Problem: "not base64"}
	tests := []struct {
		name       string
		spec       chartproofv1.TrustPolicySpec
		ev         policy.Evidence
		wantPassed bool
		wantAllow  bool
		wantCode   string
		wantInconc bool
		wantAuth   []string
	}{
		{
			name: "control: one trusted signature over the digest", spec: keySpec(1, "", "alice"),
			ev:         policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}},
			wantPassed: true, wantAllow: true, wantCode: chartproofv1.ReasonVerified, wantAuth: []string{"alice"},
		},
		{
			name: "no policy match", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: "registry.example.com/other/app", Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}},
			wantCode: chartproofv1.ReasonNoPolicyMatch,
		},
		{
			name: "no policy match is not waived in audit mode", spec: keySpec(1, chartproofv1.ModeAudit, "alice"),
			ev:       policy.Evidence{Repository: "registry.example.com/other/app", Digest: digestA},
			wantCode: chartproofv1.ReasonNoPolicyMatch,
		},
		{
			name: "no signature", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA},
			wantCode: chartproofv1.ReasonNoSignature,
		},
		{
			name: "untrusted signer", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{untrusted}},
			wantCode: chartproofv1.ReasonUntrustedSigner,
		},
		{
			name: "signature verified by an authority not in this policy", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("mallory", digestA)}},
			wantCode: chartproofv1.ReasonUntrustedSigner,
		},
		{
			name: "trusted signature copied from another digest (BND-01)", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestB)}},
			wantCode: chartproofv1.ReasonSubjectMismatch,
		},
		{
			name: "all malformed", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{broken}},
			wantCode: chartproofv1.ReasonMalformedSignature,
		},
		{
			name: "trusted among untrusted and broken ones is accepted (BND-03)", spec: keySpec(1, "", "alice"),
			ev:         policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{untrusted, broken, signed("alice", digestA)}},
			wantPassed: true, wantAllow: true, wantCode: chartproofv1.ReasonVerified, wantAuth: []string{"alice"},
		},
		{
			name: "same authority twice counts once (BND-04)", spec: keySpec(2, "", "alice", "bob"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA), signed("alice", digestA)}},
			wantCode: chartproofv1.ReasonThresholdNotMet,
		},
		{
			name: "control: two distinct authorities meet a threshold of two", spec: keySpec(2, "", "alice", "bob"),
			ev:         policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA), signed("bob", digestA)}},
			wantPassed: true, wantAllow: true, wantCode: chartproofv1.ReasonVerified, wantAuth: []string{"alice", "bob"},
		},
		{
			name: "registry unavailable is inconclusive", spec: keySpec(1, "", "alice"),
			ev:         policy.Evidence{Repository: repo, Failure: &policy.Failure{Code: chartproofv1.ReasonRegistryUnavailable, Message: "down", Inconclusive: true}},
			wantCode:   chartproofv1.ReasonRegistryUnavailable,
			wantInconc: true,
		},
		{
			name: "registry unavailable is not waived in audit mode", spec: keySpec(1, chartproofv1.ModeAudit, "alice"),
			ev:         policy.Evidence{Repository: repo, Failure: &policy.Failure{Code: chartproofv1.ReasonRegistryUnavailable, Message: "down", Inconclusive: true}},
			wantCode:   chartproofv1.ReasonRegistryUnavailable,
			wantInconc: true,
		},
		{
			name: "non-canonical digest", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: strings.ToUpper(digestA), Signatures: []policy.Signature{signed("alice", strings.ToUpper(digestA))}},
			wantCode: chartproofv1.ReasonDigestMismatch,
		},
		{
			name: "audit mode installs an unsigned chart and says why", spec: keySpec(1, chartproofv1.ModeAudit, "alice"),
			ev:        policy.Evidence{Repository: repo, Digest: digestA},
			wantAllow: true, wantCode: chartproofv1.ReasonNoSignature,
		},
		{
			name: "content that fails its digest is refused even in audit mode", spec: keySpec(1, chartproofv1.ModeAudit, "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Content: &policy.Failure{Code: chartproofv1.ReasonDigestMismatch, Message: "blob"}},
			wantCode: chartproofv1.ReasonNoSignature,
		},
		{
			name: "signed digest whose content cannot be read is inconclusive", spec: keySpec(1, "", "alice"),
			ev:         policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}, Content: &policy.Failure{Code: chartproofv1.ReasonRegistryUnavailable, Message: "timeout", Inconclusive: true}},
			wantCode:   chartproofv1.ReasonRegistryUnavailable,
			wantInconc: true,
		},
		{
			name: "signed digest whose content fails is refused", spec: keySpec(1, "", "alice"),
			ev:       policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{signed("alice", digestA)}, Content: &policy.Failure{Code: chartproofv1.ReasonDigestMismatch, Message: "blob"}},
			wantCode: chartproofv1.ReasonDigestMismatch,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := policy.Evaluate(compile(t, tc.spec), tc.ev)
			if v.Passed() != tc.wantPassed || v.Allowed() != tc.wantAllow {
				t.Errorf("Passed() = %v, Allowed() = %v, want %v, %v (reasons %+v)", v.Passed(), v.Allowed(), tc.wantPassed, tc.wantAllow, v.Reasons)
			}
			if v.Code() != tc.wantCode {
				t.Errorf("Code() = %q, want %q (reasons %+v)", v.Code(), tc.wantCode, v.Reasons)
			}
			if v.Inconclusive != tc.wantInconc {
				t.Errorf("Inconclusive = %v, want %v", v.Inconclusive, tc.wantInconc)
			}
			var auth []string
			for _, a := range v.Accepted {
				auth = append(auth, a.Authority)
			}
			if diff := cmp.Diff(tc.wantAuth, auth); diff != "" {
				t.Errorf("accepted authorities (-want +got):\n%s", diff)
			}
			if !v.Passed() && len(v.Reasons) == 0 {
				t.Error("a denial without a reason")
			}
		})
	}
}

func TestZeroVerdictDenies(t *testing.T) {
	var v policy.Verdict
	if v.Allowed() || v.Passed() {
		t.Fatalf("zero Verdict: Allowed() = %v, Passed() = %v, want false, false", v.Allowed(), v.Passed())
	}
	if got := policy.Evaluate(nil, policy.Evidence{Repository: repo, Digest: digestA}); got.Allowed() || got.Code() != chartproofv1.ReasonPolicyNotFound {
		t.Fatalf("Evaluate(nil): Allowed() = %v, Code() = %q, want false, %q", got.Allowed(), got.Code(), chartproofv1.ReasonPolicyNotFound)
	}
}

func TestCompileRefuses(t *testing.T) {
	weak := mustKey(t, "rsa1024").PublicPEM()
	p521 := mustKey(t, "p521").PublicPEM()
	good := pemFor["alice"]
	key := func(pem string) *chartproofv1.KeyAuthority { return &chartproofv1.KeyAuthority{PublicKey: pem} }
	base := func(mut func(*chartproofv1.TrustPolicySpec)) chartproofv1.TrustPolicySpec {
		s := chartproofv1.TrustPolicySpec{Repositories: []string{"r.example/**"}, Authorities: []chartproofv1.Authority{{Name: "a", Key: key(good)}}}
		mut(&s)
		return s
	}
	tests := []struct {
		name string
		kind string
		spec chartproofv1.TrustPolicySpec
		want string // part of the error; empty for the control
	}{
		{"control", "TrustPolicy", base(func(*chartproofv1.TrustPolicySpec) {}), ""},
		{"two authorities with one key", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities = append(s.Authorities, chartproofv1.Authority{Name: "b", Key: &chartproofv1.KeyAuthority{PublicKey: good, RequireTransparencyLog: true}})
		}), `has the key of authority "a"`},
		{"control: two authorities with two keys", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities = append(s.Authorities, chartproofv1.Authority{Name: "b", Key: key(pemFor["bob"])})
		}), ""},
		{"rsa below 2048 bits", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = key(weak) }), "below 2048"},
		{"P-521 curve", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = key(p521) }), "not P-256 or P-384"},
		{"not PEM", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = key("hello") }), "no PEM block"},
		{"threshold above authorities", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Threshold = 2 }), "exceeds"},
		{"negative threshold", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Threshold = -1 }), "below 1"},
		{"no repositories", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Repositories = nil }), "no repositories"},
		{"oci:// in a glob", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Repositories = []string{"oci://r.example/x"} }), "without oci://"},
		{"** inside a segment", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Repositories = []string{"r.example/a**"} }), "whole path segment"},
		{"glob longer than the cap (DOS-05)", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Repositories = []string{"r.example/" + strings.Repeat("a", policy.MaxGlobBytes)}
		}), "longer than"},
		{"authority without key", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Authorities[0].Key = nil }), "no key"},
		{"duplicate authority", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Authorities = append(s.Authorities, s.Authorities[0]) }), "listed twice"},
		{"key and secretRef", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key.SecretRef = &chartproofv1.SecretKeyReference{Name: "k"}
		}), "both publicKey and secretRef"},
		{"secret in another namespace", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k", Namespace: "other"}}
		}), "outside the policy's namespace"},
		{"cluster policy secret without namespace", "ClusterTrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) {
			s.Authorities[0].Key = &chartproofv1.KeyAuthority{SecretRef: &chartproofv1.SecretKeyReference{Name: "k"}}
		}), "must name its namespace"},
		{"bad mode", "TrustPolicy", base(func(s *chartproofv1.TrustPolicySpec) { s.Mode = "Permissive" }), "neither Enforce nor Audit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(policy.Ref{Kind: tc.kind, Namespace: "ns", Name: "p"}, tc.spec, policy.SecretReader(func(chartproofv1.SecretKeyReference) ([]byte, error) {
				return []byte(good), nil
			}))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Compile: %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Compile error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePublicKeyAcceptsEveryKind(t *testing.T) {
	for _, kind := range []string{"p256", "p384", "ed25519", "rsa2048"} {
		t.Run(kind, func(t *testing.T) {
			if _, id, err := policy.ParsePublicKey([]byte(mustKey(t, kind).PublicPEM())); err != nil || len(id) != 64 {
				t.Fatalf("ParsePublicKey: id %q, err %v; want a 64-char key ID and no error", id, err)
			}
		})
	}
}

func TestMatchRepository(t *testing.T) {
	tests := []struct {
		pattern, repo string
		want          bool
	}{
		{"r.example/team/app", "r.example/team/app", true},
		{"r.example/team/*", "r.example/team/app", true},
		{"r.example/team/*", "r.example/team/sub/app", false},
		{"r.example/team/**", "r.example/team/sub/app", true},
		{"r.example/team/**", "r.example/team", true},
		{"r.example/**/app", "r.example/a/b/c/app", true},
		{"r.example/**/app", "r.example/a/b/c/other", false},
		{"*.example/team/app", "r.example/team/app", true},
		{"*.example/team/app", "r.example:5000/team/app", false},
		{"r.example:*/team/app", "r.example:5000/team/app", true},
		{"r.example/team/app-*", "r.example/team/app-frontend", true},
		{"r.example/team/app-*", "r.example/team/other-frontend", false},
		{"r.example/te*am/app", "r.example/team/app", true},
		{"r.example/team", "r.example/team/app", false},
		{"127.0.0.1:5000/**", "127.0.0.1:5000/charts/hello", true},
		{"**/**", "r.example/a", true},
		{"r.example/**/**/app", "r.example/app", true},
		{"**", "r.example", true},
		// Many ** against a long path that does not match: a backtracking
		// matcher would try every split (DOS-05); this one is linear in
		// the product of the segment counts.
		{strings.Repeat("**/", 40) + "never", "r.example/" + strings.Repeat("a/", 60) + "b", false},
		{strings.Repeat("**/", 40) + "b", "r.example/" + strings.Repeat("a/", 60) + "b", true},
	}
	for _, tc := range tests {
		if got := policy.MatchRepository(tc.pattern, tc.repo); got != tc.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
}
