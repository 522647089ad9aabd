package policy_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// The key IDs of the test signatures (revocations name 64 hex digits).
var (
	aliceID = strings.Repeat("a1", 32)
	bobID   = strings.Repeat("b2", 32)
)

// signedBy is a key authority's signature over digest with key ID id.
func signedBy(authority, id, digest string) policy.Signature {
	s := signed(authority, digest)
	s.KeyID = id
	return s
}

// signedAt is a keyless signature over digest by ghWorkflow, at t (zero:
// no verified signing time).
func signedAt(t time.Time, digest string) policy.Signature {
	s := keylessSig(ghWorkflow, ghIssuer, []string{"gh"}, nil, digest)
	s.SignedAt = t
	return s
}

// TestEvaluateRevocations (issue 12, item 1): a revoked signer's signature
// no longer counts toward the threshold (SignerRevoked), a denied digest is
// refused whatever signs it, in Audit mode too (DigestDenied); each case
// beside the control that differs only by what is revoked.
func TestEvaluateRevocations(t *testing.T) {
	cutoff := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	revokeKeys := func(ids ...string) *chartproofv1.Revocations {
		return &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: ids}}
	}
	revokeIdentity := func(after *time.Time) *chartproofv1.Revocations {
		id := chartproofv1.RevokedIdentity{Issuer: ghIssuer, Subject: ghWorkflow}
		if after != nil {
			id.SignedAfter = &metav1.Time{Time: *after}
		}
		return &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Identities: []chartproofv1.RevokedIdentity{id}}}
	}
	keyless := func(r *chartproofv1.Revocations) chartproofv1.TrustPolicySpec {
		spec := chartproofv1.TrustPolicySpec{
			Repositories: []string{"registry.example.com/team/*"},
			Authorities:  []chartproofv1.Authority{keylessAuthority("gh", chartproofv1.Identity{Issuer: ghIssuer, Subject: ghWorkflow})},
			Revocations:  r,
		}
		return spec
	}
	withRevocations := func(spec chartproofv1.TrustPolicySpec, r *chartproofv1.Revocations) chartproofv1.TrustPolicySpec {
		spec.Revocations = r
		return spec
	}
	tests := []struct {
		name      string
		spec      chartproofv1.TrustPolicySpec
		sigs      []policy.Signature
		digest    string
		wantCode  string
		wantAllow bool
	}{
		{name: "control: another key revoked", spec: withRevocations(keySpec(1, "", "alice"), revokeKeys(bobID)),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "the signing key revoked", spec: withRevocations(keySpec(1, "", "alice"), revokeKeys(aliceID)),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "the signing key revoked, Audit mode", spec: withRevocations(keySpec(1, chartproofv1.ModeAudit, "alice"), revokeKeys(aliceID)),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonSignerRevoked, wantAllow: true},
		{name: "control: two of two authorities", spec: withRevocations(keySpec(2, "", "alice", "bob"), revokeKeys(strings.Repeat("c3", 32))),
			sigs:     []policy.Signature{signedBy("alice", aliceID, digestA), signedBy("bob", bobID, digestA)},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "one of two authorities revoked: too few count", spec: withRevocations(keySpec(2, "", "alice", "bob"), revokeKeys(bobID)),
			sigs:     []policy.Signature{signedBy("alice", aliceID, digestA), signedBy("bob", bobID, digestA)},
			wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "control: keyless identity, nothing revoked", spec: keyless(nil),
			sigs: []policy.Signature{signedAt(cutoff.Add(-time.Hour), digestA)}, wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "keyless identity revoked", spec: keyless(revokeIdentity(nil)),
			sigs: []policy.Signature{signedAt(cutoff.Add(-time.Hour), digestA)}, wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "identity revoked from a cutoff, signed before it", spec: keyless(revokeIdentity(&cutoff)),
			sigs: []policy.Signature{signedAt(cutoff.Add(-time.Hour), digestA)}, wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "identity revoked from a cutoff, signed at it", spec: keyless(revokeIdentity(&cutoff)),
			sigs: []policy.Signature{signedAt(cutoff, digestA)}, wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "identity revoked from a cutoff, signed after it", spec: keyless(revokeIdentity(&cutoff)),
			sigs: []policy.Signature{signedAt(cutoff.Add(time.Hour), digestA)}, wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "identity revoked from a cutoff, no verified signing time", spec: keyless(revokeIdentity(&cutoff)),
			sigs: []policy.Signature{signedAt(time.Time{}, digestA)}, wantCode: chartproofv1.ReasonSignerRevoked},
		{name: "control: another digest denied", spec: withRevocations(keySpec(1, "", "alice"),
			&chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Digests: []string{digestB}}}),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "digest denied", spec: withRevocations(keySpec(1, "", "alice"),
			&chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Digests: []string{digestA}}}),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonDigestDenied},
		{name: "digest denied, Audit mode", spec: withRevocations(keySpec(1, chartproofv1.ModeAudit, "alice"),
			&chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Digests: []string{digestA}}}),
			sigs: []policy.Signature{signedBy("alice", aliceID, digestA)}, wantCode: chartproofv1.ReasonDigestDenied},
	}
	rootJSON := trustedRootJSON(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, tc.spec,
				objects{"configmap:ns/sigstore/trusted_root.json": rootJSON})
			if err != nil {
				t.Fatal(err)
			}
			v := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: tc.sigs})
			if v.Code() != tc.wantCode || v.Allowed() != tc.wantAllow {
				t.Fatalf("verdict %s (allowed %v): %s; want %s (allowed %v)", v.Code(), v.Allowed(), v.Message(), tc.wantCode, tc.wantAllow)
			}
			if tc.wantCode == chartproofv1.ReasonSignerRevoked && len(v.Accepted) != 0 {
				t.Errorf("accepted %+v; a denial accepts nobody", v.Accepted)
			}
		})
	}
}

// TestCompileRevocations: a revocation list from a ConfigMap adds to the
// inline one and is checked as strictly; malformed entries, an unknown
// field, a missing ConfigMap and one outside a TrustPolicy's namespace make
// the policy invalid (it then denies every chart).
func TestCompileRevocations(t *testing.T) {
	fromConfigMap := func(name, namespace string) chartproofv1.TrustPolicySpec {
		spec := keySpec(1, "", "alice")
		spec.Revocations = &chartproofv1.Revocations{
			RevocationList: chartproofv1.RevocationList{KeyIDs: []string{aliceID}},
			ConfigMapRef:   &chartproofv1.RevocationsKeyReference{Name: name, Namespace: namespace},
		}
		return spec
	}
	objs := objects{
		"configmap:ns/revoked/revocations.yaml": []byte("keyIDs: [" + bobID + "]\ndigests: [" + digestB + "]\n" +
			"identities:\n- issuer: " + ghIssuer + "\n  subject: " + ghWorkflow + "\n  signedAfter: 2026-11-01T00:00:00Z\n"),
		"configmap:ns/unknown-field/revocations.yaml": []byte("keyIds: [" + bobID + "]\n"),
		"configmap:ns/duplicate/revocations.yaml":     []byte("keyIDs: [" + bobID + "]\nkeyIDs: []\n"),
		"configmap:ns/bad-key/revocations.yaml":       []byte("keyIDs: [not-hex]\n"),
		"configmap:ns/bad-digest/revocations.yaml":    []byte("digests: [sha256:ABC]\n"),
		"configmap:ns/no-subject/revocations.yaml":    []byte("identities:\n- issuer: " + ghIssuer + "\n"),
	}
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}

	p, err := policy.Compile(ref, fromConfigMap("revoked", ""), objs)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	r := p.Revoked
	if !r.KeyIDs[aliceID] || !r.KeyIDs[bobID] || !r.Digests[digestB] || len(r.Identities) != 1 ||
		!r.Identities[0].After.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("compiled revocations %+v; want alice's and bob's keys, digest B and the workflow from 2026-11-01", r)
	}

	for _, tc := range []struct{ name, configMap, namespace, want string }{
		{"unknown field (names are case-sensitive)", "unknown-field", "", `unknown field "keyIds"`},
		{"duplicate field", "duplicate", "", "duplicate"},
		{"malformed key ID", "bad-key", "", `key ID "not-hex"`},
		{"malformed digest", "bad-digest", "", `digest "sha256:ABC"`},
		{"identity without subject", "no-subject", "", "an identity needs an issuer and a subject"},
		{"missing ConfigMap", "absent", "", "not found"},
		{"another namespace", "revoked", "infra", "outside the policy's namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Compile(ref, fromConfigMap(tc.configMap, tc.namespace), objs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile: %v; want an error containing %q", err, tc.want)
			}
		})
	}
	spec := keySpec(1, "", "alice")
	spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{KeyIDs: []string{"ABC"}}}
	if _, err := policy.Compile(ref, spec, nil); err == nil || !strings.Contains(err.Error(), `key ID "ABC"`) {
		t.Errorf("inline malformed key ID: %v", err)
	}
}
