package verify

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	ghIssuer   = "https://token.actions.githubusercontent.com"
	ghWorkflow = "https://github.com/org/repo/.github/workflows/release.yaml@refs/tags/v1.2.3"
	ghRepo     = "https://github.com/org/repo"
	mailIssuer = "https://accounts.example.com"
	repo       = "registry.example.com/team/app"
)

// objects is a policy.Reader over in-memory ConfigMaps and Secrets, keyed
// "namespace/name/key".
type objects map[string][]byte

func (o objects) Secret(ref chartproofv1.SecretKeyReference) ([]byte, error) {
	return o.get(ref.Namespace, ref.Name, ref.Key)
}

func (o objects) ConfigMap(namespace, name, key string) ([]byte, error) {
	return o.get(namespace, name, key)
}

func (o objects) get(namespace, name, key string) ([]byte, error) {
	b, ok := o[namespace+"/"+name+"/"+key]
	if !ok {
		return nil, errors.New("not found")
	}
	return b, nil
}

func newSigstore(t *testing.T) *testsign.Sigstore {
	t.Helper()
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ghCert is a GitHub Actions release workflow's certificate.
func ghCert() testsign.Cert {
	return testsign.Cert{URI: ghWorkflow, Issuer: ghIssuer, Extensions: map[string]string{
		"sourceRepositoryURI": ghRepo, "githubWorkflowRef": "refs/tags/v1.2.3", "runnerEnvironment": "github-hosted",
	}}
}

// keylessSpec trusts, through the trusted root in ConfigMap ns/sigstore:
// "gh", the release workflow of org/repo on a v* tag (anchored regexp);
// "people", alice@example.com.
func keylessSpec(threshold int, subjectRegExp string) chartproofv1.TrustPolicySpec {
	ref := &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}}
	return chartproofv1.TrustPolicySpec{
		Repositories: []string{"registry.example.com/team/*"},
		Threshold:    threshold,
		Authorities: []chartproofv1.Authority{
			{Name: "gh", Keyless: &chartproofv1.KeylessAuthority{TrustedRoot: ref, Identities: []chartproofv1.Identity{{
				Issuer: ghIssuer, SubjectRegExp: subjectRegExp,
				Extensions: []chartproofv1.ExtensionMatch{{Name: "sourceRepositoryURI", Value: ghRepo}},
			}}}},
			{Name: "people", Keyless: &chartproofv1.KeylessAuthority{TrustedRoot: ref, Identities: []chartproofv1.Identity{{
				Issuer: mailIssuer, Subject: "alice@example.com",
			}}}},
		},
	}
}

const releaseTags = `https://github\.com/org/repo/\.github/workflows/release\.yaml@refs/tags/v.*`

func compileKeyless(t *testing.T, s *testsign.Sigstore, spec chartproofv1.TrustPolicySpec, withCTLog bool) (*policy.Policy, *Verifier) {
	t.Helper()
	rootJSON, err := s.TrustedRootJSON(withCTLog)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, objects{"ns/sigstore/trusted_root.json": rootJSON})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	v, err := New(p.Authorities)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, v
}

// TestKeyless signs with a throwaway Sigstore and checks the verdict each
// bundle leads to. Every refusal has a control twin that differs in the one
// property under test and is accepted.
func TestKeyless(t *testing.T) {
	s := newSigstore(t)
	now := time.Now()
	stmt := testsign.Statement(repo, digestA)
	expired := ghCert()
	expired.NotBefore, expired.NotAfter = now.Add(-30*time.Minute), now.Add(-20*time.Minute)
	otherRepo := ghCert()
	otherRepo.Extensions = map[string]string{"sourceRepositoryURI": "https://github.com/org/fork"}
	evilIssuer := ghCert()
	evilIssuer.Issuer = "https://evil.example"
	evilRef := ghCert()
	evilRef.URI = "https://github.com/org/repo/.github/workflows/x.yaml@refs/heads/evil"

	tests := []struct {
		name          string
		subjectRegExp string // the gh authority's; releaseTags when empty
		ctLog         bool
		opts          testsign.KeylessOptions
		want          string
		wantProblem   string // for a refusal: what sigstore-go said, in part
	}{
		{name: "control: good keyless signature", opts: testsign.KeylessOptions{Cert: ghCert()}, want: chartproofv1.ReasonVerified},
		{name: "control: with an RFC 3161 timestamp too", opts: testsign.KeylessOptions{Cert: ghCert(), Timestamp: true}, want: chartproofv1.ReasonVerified},
		{name: "control: email identity", opts: testsign.KeylessOptions{Cert: testsign.Cert{Email: "alice@example.com", Issuer: mailIssuer}}, want: chartproofv1.ReasonVerified},

		{name: "wrong issuer (BND-09)", opts: testsign.KeylessOptions{Cert: evilIssuer}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "extension names another repository", opts: testsign.KeylessOptions{Cert: otherRepo}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "SAN matched only by the unanchored regexp (BND-09)", subjectRegExp: `https://github\.com/org/repo/`,
			opts: testsign.KeylessOptions{Cert: evilRef}, want: chartproofv1.ReasonIdentityMismatch},
		{name: "control: the same SAN under a regexp that asks for any path", subjectRegExp: `https://github\.com/org/repo/.*`,
			opts: testsign.KeylessOptions{Cert: evilRef}, want: chartproofv1.ReasonVerified},

		{name: "certificate expired at the log's time (SIG-03)", opts: testsign.KeylessOptions{Cert: expired, LoggedAt: now.Add(-10 * time.Minute)}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "integrated time outside certificate validity"},
		{name: "control: expired now, valid at the log's time", opts: testsign.KeylessOptions{Cert: expired, LoggedAt: now.Add(-25 * time.Minute)}, want: chartproofv1.ReasonVerified},
		{name: "valid at the log's time, expired at the timestamp authority's (SIG-03)", opts: testsign.KeylessOptions{Cert: expired, LoggedAt: now.Add(-25 * time.Minute), Timestamp: true},
			want: chartproofv1.ReasonUntrustedSigner, wantProblem: "certificate"},

		{name: "no log entry, timestamp only", opts: testsign.KeylessOptions{Cert: ghCert(), NoLog: true}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "not enough verified log entries"},
		{name: "tampered inclusion proof (SIG-02)", opts: testsign.KeylessOptions{Cert: ghCert(), TamperInclusionProof: true}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "does not match expected root"},
		{name: "checkpoint signed by an unknown log key (SIG-02)", opts: testsign.KeylessOptions{Cert: ghCert(), CheckpointFromOtherLog: true}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "signature on checkpoint did not verify"},
		{name: "log entry for another artifact (SIG-01)", opts: testsign.KeylessOptions{Cert: ghCert(), LogStatement: testsign.Statement(repo, digestB)}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "transparency log signature does not match"},
		{name: "certificate from an untrusted CA", opts: testsign.KeylessOptions{Cert: testsign.Cert{Email: "alice@example.com", Issuer: mailIssuer, UntrustedCA: true}}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "leaf certificate verification failed"},
		{name: "no SCT while the trusted root lists a CT log (SIG-06)", ctLog: true, opts: testsign.KeylessOptions{Cert: ghCert()}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "signed certificate timestamp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re := tc.subjectRegExp
			if re == "" {
				re = releaseTags
			}
			p, v := compileKeyless(t, s, keylessSpec(1, re), tc.ctLog)
			b, err := s.SignKeyless(stmt, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			sig, ok := v.Bundle(b)
			if !ok {
				t.Fatalf("Bundle: not a signature: %+v", sig)
			}
			sig.Layout, sig.Ref = policy.LayoutSigstoreBundle, "sha256:ref"
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s); want %s\nsignature: %+v", got, verdict.Message(), tc.want, sig)
			}
			if tc.wantProblem != "" && (len(sig.RootVerified) != 0 || !strings.Contains(sig.Problem, tc.wantProblem)) {
				t.Errorf("refused signature: root verified %v, problem %q; want none, and a problem saying %q", sig.RootVerified, sig.Problem, tc.wantProblem)
			}
		})
	}
}

// TestKeylessFacts checks what a verified keyless bundle is reported to be:
// the certificate's identity and extensions, the log entry, and the log's
// time as the signing time, even for a certificate expired now.
func TestKeylessFacts(t *testing.T) {
	s := newSigstore(t)
	p, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	loggedAt := time.Now().Add(-25 * time.Minute).Truncate(time.Second)
	cert := ghCert()
	cert.NotBefore, cert.NotAfter = loggedAt.Add(-5*time.Minute), loggedAt.Add(5*time.Minute)
	b, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: cert, LoggedAt: loggedAt})
	if err != nil {
		t.Fatal(err)
	}
	sig, ok := v.Bundle(b)
	if !ok {
		t.Fatal("Bundle: not a signature")
	}
	logID, err := s.Virtual.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hex.DecodeString(logID); err != nil {
		t.Fatal(err)
	}
	want := policy.Signature{
		Subjects:     []string{digestA},
		RootVerified: []string{"gh", "people"}, // one trusted root, one verifier, both authorities
		Identity: &policy.CertIdentity{Issuer: ghIssuer, Subject: ghWorkflow, SubjectType: "uri", Extensions: map[string]string{
			"sourceRepositoryURI": ghRepo, "githubWorkflowRef": "refs/tags/v1.2.3", "runnerEnvironment": "github-hosted",
		}},
		Log:      []policy.LogEntry{{LogID: logID, Index: 0}},
		SignedAt: loggedAt.UTC(),
	}
	if diff := cmp.Diff(sig, want); diff != "" {
		t.Fatalf("facts (-got +want):\n%s", diff)
	}
	verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
	if !verdict.Passed() || len(verdict.Accepted) != 1 || verdict.Accepted[0].Authority != "gh" {
		t.Fatalf("verdict %s %+v; want passed, accepted by gh only", verdict.Code(), verdict.Accepted)
	}
	acc := verdict.Accepted[0]
	if acc.Identity.Subject != ghWorkflow || acc.Log == nil || acc.Log.LogID != logID || acc.SignedAt == nil || !acc.SignedAt.Equal(loggedAt) {
		t.Errorf("acceptance %+v; want subject %s, log %s, signed at %s", acc, ghWorkflow, logID, loggedAt)
	}
}

// TestKeylessThreshold: two authorities that both accept the release
// workflow are not satisfied by that workflow signing twice (BND-04); they
// are by two distinct identities.
func TestKeylessThreshold(t *testing.T) {
	s := newSigstore(t)
	spec := keylessSpec(2, releaseTags)
	// "people" accepts both alice and the release workflow.
	spec.Authorities[1].Keyless.Identities = append(spec.Authorities[1].Keyless.Identities, chartproofv1.Identity{Issuer: ghIssuer, SubjectRegExp: releaseTags})
	p, v := compileKeyless(t, s, spec, false)
	sign := func(c testsign.Cert) policy.Signature {
		b, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: c})
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := v.Bundle(b)
		sig.Layout, sig.Ref = policy.LayoutSigstoreBundle, "sha256:"+strings.Repeat("c", 64)
		return sig
	}
	alice := testsign.Cert{Email: "alice@example.com", Issuer: mailIssuer}
	tests := []struct {
		name string
		sigs []policy.Signature
		want string
	}{
		{"the same identity twice counts once", []policy.Signature{sign(ghCert()), sign(ghCert())}, chartproofv1.ReasonThresholdNotMet},
		{"control: two distinct identities", []policy.Signature{sign(ghCert()), sign(alice)}, chartproofv1.ReasonVerified},
		{"control: order does not matter", []policy.Signature{sign(alice), sign(ghCert())}, chartproofv1.ReasonVerified},
		{"threshold not met: one identity", []policy.Signature{sign(alice)}, chartproofv1.ReasonThresholdNotMet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: tc.sigs})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got, verdict.Message(), tc.want)
			}
		})
	}
}

// TestKeylessPublicGood: an authority without trustedRoot verifies against
// the embedded public-good root, so a bundle from another Sigstore (this
// throwaway one) is refused (SIG-04).
func TestKeylessPublicGood(t *testing.T) {
	s := newSigstore(t)
	spec := keylessSpec(1, releaseTags)
	spec.Authorities = spec.Authorities[:1]
	spec.Authorities[0].Keyless.TrustedRoot = nil
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: ghCert()})
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := v.Bundle(b)
	if len(sig.RootVerified) != 0 || !strings.Contains(sig.Problem, "sigstore-public-good") {
		t.Fatalf("signature %+v; want refused by the public-good root", sig)
	}
}

// TestKeylessFromAnotherSigstore (SIG-04): the trusted root comes from the
// policy, never from the bundle. A bundle made end to end by another
// Sigstore instance (its CA, its log, its timestamp authority) is refused;
// the same identity from the policy's Sigstore is the control.
func TestKeylessFromAnotherSigstore(t *testing.T) {
	ours, theirs := newSigstore(t), newSigstore(t)
	p, v := compileKeyless(t, ours, keylessSpec(1, releaseTags), false)
	for _, tc := range []struct {
		name string
		s    *testsign.Sigstore
		want string
	}{
		{"control: the policy's Sigstore", ours, chartproofv1.ReasonVerified},
		{"another Sigstore instance (SIG-04)", theirs, chartproofv1.ReasonUntrustedSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: ghCert(), Timestamp: true})
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := v.Bundle(b)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got, verdict.Message(), tc.want)
			}
		})
	}
}

// TestSubjectType (BND-09): a URI SAN that spells an email address matches
// an identity naming that address unless the identity says which kind of
// SAN it means. With subjectType email, only the email SAN counts.
func TestSubjectType(t *testing.T) {
	s := newSigstore(t)
	const who = "alice@example.com"
	spec := func(subjectType chartproofv1.SubjectType) chartproofv1.TrustPolicySpec {
		sp := keylessSpec(1, releaseTags)
		sp.Authorities = sp.Authorities[1:] // "people": alice@example.com
		sp.Authorities[0].Keyless.Identities[0].SubjectType = subjectType
		return sp
	}
	for _, tc := range []struct {
		name        string
		subjectType chartproofv1.SubjectType
		cert        testsign.Cert
		want        string
	}{
		{"control: email SAN, subjectType email", chartproofv1.SubjectTypeEmail, testsign.Cert{Email: who, Issuer: mailIssuer}, chartproofv1.ReasonVerified},
		{"URI SAN spelling the address, subjectType email (BND-09)", chartproofv1.SubjectTypeEmail, testsign.Cert{URI: who, Issuer: mailIssuer}, chartproofv1.ReasonIdentityMismatch},
		{"URI SAN spelling the address, no subjectType: matches the string", "", testsign.Cert{URI: who, Issuer: mailIssuer}, chartproofv1.ReasonVerified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, v := compileKeyless(t, s, spec(tc.subjectType), false)
			b, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: tc.cert})
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := v.Bundle(b)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s; certificate identity %+v", got, verdict.Message(), tc.want, sig.Identity)
			}
		})
	}
}

// TestIssuerExpiresBeforeLeaf (SIG-10): the intermediate CA expires two
// hours ago; the leaf it issued is valid for longer. A signature logged
// after the intermediate expired is refused, although the leaf was still
// valid; its twin, logged while both were valid, is accepted.
func TestIssuerExpiresBeforeLeaf(t *testing.T) {
	now := time.Now()
	s, err := testsign.NewSigstoreWith(testsign.SigstoreOptions{IntermediateNotAfter: now.Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	p, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	leaf := ghCert()
	leaf.NotBefore, leaf.NotAfter = now.Add(-3*time.Hour), now.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		loggedAt time.Time
		want     string
	}{
		{"control: logged while the intermediate was valid", now.Add(-150 * time.Minute), chartproofv1.ReasonVerified},
		{"logged after the intermediate expired (SIG-10)", now.Add(-time.Hour), chartproofv1.ReasonUntrustedSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: leaf, LoggedAt: tc.loggedAt})
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := v.Bundle(b)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got, verdict.Message(), tc.want)
			}
			if tc.want != chartproofv1.ReasonVerified && !strings.Contains(sig.Problem, "certificate") {
				t.Errorf("refused for another reason than the chain's validity: %s", sig.Problem)
			}
		})
	}
}

// TestChainedV03Bundle: a v0.3 bundle that carries a certificate chain
// (the format allows its leaf alone; cosign v3 writes one when it signs
// with a key and its certificate chain, e2e.TestCosignCertificateChain
// "v3/bundle") is read with the chain's first certificate as its leaf, and
// verifies as the same bundle with the leaf alone (the control); its other
// certificates are candidates only: a chain whose leaf is another
// certificate is judged by that leaf, and one with a certificate that does
// not parse, or with a root (THREATS SIG-05), is malformed.
func TestChainedV03Bundle(t *testing.T) {
	s := newSigstore(t)
	p, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	signed, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: ghCert(), Timestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(signed, &b); err != nil {
		t.Fatal(err)
	}
	vm := b["verificationMaterial"].(map[string]any)
	leaf := vm["certificate"].(map[string]any)["rawBytes"].(string)
	other, err := s.SignKeyless(testsign.Statement(repo, digestA), testsign.KeylessOptions{Cert: testsign.Cert{Issuer: ghIssuer, URI: "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"}, Timestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	var ob map[string]any
	if err := json.Unmarshal(other, &ob); err != nil {
		t.Fatal(err)
	}
	otherLeaf := ob["verificationMaterial"].(map[string]any)["certificate"].(map[string]any)["rawBytes"].(string)
	chained := func(certs ...string) []byte {
		t.Helper()
		var list []map[string]string
		for _, c := range certs {
			list = append(list, map[string]string{"rawBytes": c})
		}
		copied := map[string]any{}
		for k, val := range vm {
			if k != "certificate" {
				copied[k] = val
			}
		}
		copied["x509CertificateChain"] = map[string]any{"certificates": list}
		b["verificationMaterial"] = copied
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	garbage := base64.StdEncoding.EncodeToString([]byte("not a certificate"))
	ca, err := testsign.NewRootCA("a root", nil)
	if err != nil {
		t.Fatal(err)
	}
	rootCert := base64.StdEncoding.EncodeToString(ca.Cert.Raw)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"control: the leaf alone", signed, chartproofv1.ReasonVerified},
		{"the leaf and a carried certificate", chained(leaf, otherLeaf), chartproofv1.ReasonVerified},
		{"another leaf first", chained(otherLeaf, leaf), chartproofv1.ReasonUntrustedSigner},
		{"a carried certificate that does not parse", chained(leaf, garbage), chartproofv1.ReasonMalformedSignature},
		{"a root in the chain (SIG-05)", chained(leaf, otherLeaf, rootCert), chartproofv1.ReasonMalformedSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, _ := v.Bundle(tc.data)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got, verdict.Message(), tc.want)
			}
		})
	}
}
