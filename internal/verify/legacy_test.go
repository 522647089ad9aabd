package verify

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/root"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestLegacyKeyless signs simple-signing payloads keyless in cosign's legacy
// layout with a throwaway Sigstore and checks the verdict each layer leads
// to. Every refusal has a control twin that differs in the one property
// under test and is accepted.
func TestLegacyKeyless(t *testing.T) {
	s := newSigstore(t)
	now := time.Now()
	payload := testsign.SimpleSigningPayload(repo, digestA)
	expired := ghCert()
	expired.NotBefore, expired.NotAfter = now.Add(-30*time.Minute), now.Add(-20*time.Minute)
	evilIssuer := ghCert()
	evilIssuer.Issuer = "https://evil.example"
	untrusted := testsign.Cert{Email: "alice@example.com", Issuer: mailIssuer, UntrustedCA: true}
	rogueChain := untrustedChain(t, s)
	noChain := ""

	tests := []struct {
		name        string
		ctLog       bool
		opts        testsign.LegacyOptions
		tamper      func(map[string]string)
		want        string
		wantProblem string // for a refusal: what sigstore-go said, in part
	}{
		{name: "control: good legacy keyless signature", opts: testsign.LegacyOptions{Cert: ghCert()}, want: chartproofv1.ReasonVerified},
		{name: "control: with an RFC 3161 timestamp too", opts: testsign.LegacyOptions{Cert: ghCert(), Timestamp: true}, want: chartproofv1.ReasonVerified},
		{name: "control: email identity", opts: testsign.LegacyOptions{Cert: testsign.Cert{Email: "alice@example.com", Issuer: mailIssuer}}, want: chartproofv1.ReasonVerified},
		{name: "control: both issuer extensions, as Fulcio sets them", opts: testsign.LegacyOptions{Cert: withIssuerV1(ghCert())}, want: chartproofv1.ReasonVerified},
		{name: "control: empty chain annotation (the chain comes from the trusted root)", opts: testsign.LegacyOptions{Cert: ghCert(), Chain: &noChain}, want: chartproofv1.ReasonVerified},

		{name: "wrong issuer (BND-09)", opts: testsign.LegacyOptions{Cert: evilIssuer}, want: chartproofv1.ReasonIdentityMismatch},

		{name: "certificate expired at the log's time (SIG-03)", opts: testsign.LegacyOptions{Cert: expired, LoggedAt: now.Add(-10 * time.Minute)}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "outside certificate validity"},
		{name: "control: expired now, valid at the log's time", opts: testsign.LegacyOptions{Cert: expired, LoggedAt: now.Add(-25 * time.Minute)}, want: chartproofv1.ReasonVerified},

		{name: "no bundle annotation, no log entry", opts: testsign.LegacyOptions{Cert: ghCert(), NoLog: true}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "not enough verified log entries"},
		{name: "no bundle annotation, timestamp only", opts: testsign.LegacyOptions{Cert: ghCert(), NoLog: true, Timestamp: true}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "not enough verified log entries"},
		{name: "log entry for another artifact (SIG-01)", opts: testsign.LegacyOptions{Cert: ghCert(), LogPayload: testsign.SimpleSigningPayload(repo, digestB)}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "transparency log signature does not match"},
		{name: "log entry for another certificate (SIG-01)", opts: testsign.LegacyOptions{Cert: ghCert()}, tamper: func(a map[string]string) {
			// the certificate of another signing of the same payload: the
			// log entry, signature and SET are the first signing's
			other, err := s.SignLegacy(payload, testsign.LegacyOptions{Cert: ghCert()})
			if err != nil {
				t.Fatal(err)
			}
			a[testsign.CertificateAnnotation] = other.Annotations[testsign.CertificateAnnotation]
		}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "transparency log certificate does not match"},
		{name: "signed entry timestamp over another integrated time (SIG-02)", opts: testsign.LegacyOptions{Cert: ghCert()}, tamper: func(a map[string]string) {
			a[testsign.BundleAnnotation] = editRekorBundle(t, a[testsign.BundleAnnotation], func(p map[string]any) { p["integratedTime"] = p["integratedTime"].(float64) - 60 })
		}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "not enough verified log entries"},
		{name: "certificate from an untrusted CA, its chain in the chain annotation", opts: testsign.LegacyOptions{Cert: untrusted}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "leaf certificate verification failed"},
		{name: "control: a trusted certificate with that rogue chain annotation", opts: testsign.LegacyOptions{Cert: ghCert(), Chain: &rogueChain}, want: chartproofv1.ReasonVerified},
		{name: "no SCT while the trusted root lists a CT log (SIG-06)", ctLog: true, opts: testsign.LegacyOptions{Cert: ghCert()}, want: chartproofv1.ReasonUntrustedSigner, wantProblem: "signed certificate timestamp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, v := compileKeyless(t, s, keylessSpec(1, releaseTags), tc.ctLog)
			layer, err := s.SignLegacy(payload, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(layer.Annotations)
			}
			sig := v.Legacy(layer.Data, layer.Annotations)
			if sig.Malformed {
				t.Fatalf("Legacy: malformed: %s", sig.Problem)
			}
			sig.Layout, sig.Ref = policy.LayoutCosignLegacy, "sha256:ref"
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

// TestLegacyKeylessFacts: a verified legacy keyless signature reports what
// a bundle does: the digest its payload names, the identity, the log entry
// of the bundle annotation, and the log's time as the signing time.
func TestLegacyKeylessFacts(t *testing.T) {
	s := newSigstore(t)
	_, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	loggedAt := time.Now().Add(-25 * time.Minute).Truncate(time.Second)
	cert := ghCert()
	cert.NotBefore, cert.NotAfter = loggedAt.Add(-5*time.Minute), loggedAt.Add(5*time.Minute)
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), testsign.LegacyOptions{Cert: cert, LoggedAt: loggedAt})
	if err != nil {
		t.Fatal(err)
	}
	sig := v.Legacy(layer.Data, layer.Annotations)
	logID, err := s.Virtual.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Signature{
		Subjects:     []string{digestA},
		RootVerified: []string{"gh", "people"},
		Identity: &policy.CertIdentity{Issuer: ghIssuer, Subject: ghWorkflow, SubjectType: "uri", Extensions: map[string]string{
			"sourceRepositoryURI": ghRepo, "githubWorkflowRef": "refs/tags/v1.2.3", "runnerEnvironment": "github-hosted",
		}},
		Log:      []policy.LogEntry{{LogID: logID, Index: rekorIndex(t, layer.Annotations[testsign.BundleAnnotation])}},
		SignedAt: loggedAt.UTC(),
	}
	if diff := cmp.Diff(sig, want); diff != "" {
		t.Fatalf("facts (-got +want):\n%s", diff)
	}
}

// TestLegacyKeyedLogged: a keyed legacy signature with a Rekor bundle
// annotation (cosign v2's default for --key) verifies under a key authority
// that does not require the log, as it did before the annotation was read;
// under one that requires the log, the entry is reported; without the
// annotation there is none, and the reason why.
func TestLegacyKeyedLogged(t *testing.T) {
	s := newSigstore(t)
	k := newKey(t, "p256")
	payload := testsign.SimpleSigningPayload(repo, digestA)
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(rootJSON)
	if err != nil {
		t.Fatal(err)
	}
	pub, id, err := policy.ParsePublicKey([]byte(k.PublicPEM()))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New([]policy.Authority{{Name: "team", PublicKey: pub, KeyID: id}})
	if err != nil {
		t.Fatal(err)
	}
	logged, err := New([]policy.Authority{{Name: "team", PublicKey: pub, KeyID: id, Log: &policy.TrustRoot{TrustedRoot: tr, RootDigest: "sha256:x", RootSource: "test root"}}})
	if err != nil {
		t.Fatal(err)
	}
	withLog, err := s.SignLegacy(payload, testsign.LegacyOptions{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	noLog, err := s.SignLegacy(payload, testsign.LegacyOptions{Key: k, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseLegacy(withLog.Data, withLog.Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := l.bundle.TlogEntries(); err != nil || len(entries) != 1 {
		t.Fatalf("bundle made of the layer has log entries %v (%v), want the annotation's one", entries, err)
	}
	logID, err := s.Virtual.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	entry := []policy.LogEntry{{LogID: logID, Index: rekorIndex(t, withLog.Annotations[testsign.BundleAnnotation])}}

	tests := []struct {
		name           string
		v              *Verifier
		layer          testsign.Blob
		wantLog        []policy.LogEntry
		wantLogProblem bool
	}{
		{"control: logged, the authority does not require the log", plain, withLog, nil, false},
		{"control: not logged, the authority does not require the log", plain, noLog, nil, false},
		{"logged, the authority requires the log: the entry is reported", logged, withLog, entry, false},
		{"not logged, the authority requires the log", logged, noLog, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.v.Legacy(tc.layer.Data, tc.layer.Annotations)
			if sig.Authority != "team" || !cmp.Equal(sig.Subjects, []string{digestA}) {
				t.Fatalf("Legacy = %+v, want authority team naming %s", sig, digestA)
			}
			if !cmp.Equal(sig.Log, tc.wantLog) || (sig.LogProblem != "") != tc.wantLogProblem {
				t.Errorf("log %v, log problem %q; want log %v, a log problem: %v", sig.Log, sig.LogProblem, tc.wantLog, tc.wantLogProblem)
			}
		})
	}
}

// TestLegacyHostileAnnotations: annotations that cannot be read are
// malformed, with a problem naming the annotation, never trusted. The
// control is the same layer untouched.
func TestLegacyHostileAnnotations(t *testing.T) {
	s := newSigstore(t)
	_, v := compileKeyless(t, s, keylessSpec(1, releaseTags), false)
	layer, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), testsign.LegacyOptions{Cert: ghCert(), Timestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("A", limits.MaxSignatureAnnotationBytes+1)
	set := func(k, v string) func(map[string]string) { return func(a map[string]string) { a[k] = v } }
	payload := func(edit func(map[string]any)) func(map[string]string) {
		return func(a map[string]string) {
			a[testsign.BundleAnnotation] = editRekorBundle(t, a[testsign.BundleAnnotation], edit)
		}
	}
	tests := []struct {
		name        string
		tamper      func(map[string]string)
		wantProblem string // "" for the control
	}{
		{"control", func(map[string]string) {}, ""},
		{"certificate annotation over the cap (DOS-04)", set(testsign.CertificateAnnotation, big), "over the cap"},
		{"bundle annotation over the cap (DOS-04)", set(testsign.BundleAnnotation, big), "over the cap"},
		{"chain annotation over the cap (DOS-04)", set(testsign.ChainAnnotation, big), "over the cap"},
		{"certificate not PEM", set(testsign.CertificateAnnotation, "hello"), "certificate annotation: not PEM"},
		{"certificate not a certificate", set(testsign.CertificateAnnotation, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "certificate annotation"},
		{"two certificates", func(a map[string]string) {
			a[testsign.CertificateAnnotation] += a[testsign.CertificateAnnotation]
		}, "2 certificates, want one"},
		{"certificate followed by junk", func(a map[string]string) { a[testsign.CertificateAnnotation] += "junk" }, "certificate annotation: not PEM"},
		{"chain not PEM", set(testsign.ChainAnnotation, "junk"), "chain annotation: not PEM"},
		{"chain of a private key", set(testsign.ChainAnnotation, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "chain annotation: PEM block of type"},
		{"bundle not JSON", set(testsign.BundleAnnotation, "{"), "bundle annotation"},
		{"bundle an array", set(testsign.BundleAnnotation, "[]"), "bundle annotation"},
		{"bundle key in another case (BND-08)", func(a map[string]string) {
			a[testsign.BundleAnnotation] = strings.Replace(a[testsign.BundleAnnotation], `"Payload"`, `"payload"`, 1)
		}, `unknown key "payload"`},
		{"bundle duplicate key (BND-08)", func(a map[string]string) {
			a[testsign.BundleAnnotation] = strings.Replace(a[testsign.BundleAnnotation], `{"SignedEntryTimestamp"`, `{"Payload":{},"SignedEntryTimestamp"`, 1)
		}, "bundle annotation"},
		{"bundle without a SET", func(a map[string]string) {
			var rb map[string]any
			if err := json.Unmarshal([]byte(a[testsign.BundleAnnotation]), &rb); err != nil {
				t.Fatal(err)
			}
			delete(rb, "SignedEntryTimestamp")
			raw, err := json.Marshal(rb)
			if err != nil {
				t.Fatal(err)
			}
			a[testsign.BundleAnnotation] = string(raw)
		}, "no SignedEntryTimestamp"},
		{"body not base64", payload(func(p map[string]any) { p["body"] = "%%%" }), "Payload.body is not base64"},
		{"body not a Rekor entry", payload(func(p map[string]any) { p["body"] = base64.StdEncoding.EncodeToString([]byte(`{"a":1}`)) }), "not a Rekor entry"},
		{"body of an unknown kind", payload(func(p map[string]any) {
			p["body"] = base64.StdEncoding.EncodeToString([]byte(`{"apiVersion":"0.0.1","kind":"nonsense","spec":{}}`))
		}), "signature:"},
		{"negative log index (SIG-07)", payload(func(p map[string]any) { p["logIndex"] = -1 }), "logIndex -1 is negative"},
		{"log ID not hex", payload(func(p map[string]any) { p["logID"] = "zz" }), "is not a lowercase hex sha256"},
		{"log ID in uppercase", payload(func(p map[string]any) { p["logID"] = strings.ToUpper(p["logID"].(string)) }), "is not a lowercase hex sha256"},
		{"integrated time zero", payload(func(p map[string]any) { p["integratedTime"] = 0 }), "integratedTime 0 is not positive"},
		{"payload field unknown", payload(func(p map[string]any) { p["extra"] = 1 }), `unknown key "extra"`},
		{"timestamp not JSON", set(testsign.TimestampAnnotation, "}"), "timestamp annotation"},
		{"timestamp empty", set(testsign.TimestampAnnotation, `{"SignedRFC3161Timestamp":""}`), "no SignedRFC3161Timestamp"},
		{"signature not base64", set(testsign.SignatureAnnotation, "%%%"), "signature annotation is not base64"},
		{"no signature", func(a map[string]string) { delete(a, testsign.SignatureAnnotation) }, "signature annotation is not base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ann := maps.Clone(layer.Annotations)
			tc.tamper(ann)
			sig := v.Legacy(layer.Data, ann)
			if tc.wantProblem == "" {
				if sig.Malformed || len(sig.RootVerified) == 0 {
					t.Fatalf("control refused: %+v", sig)
				}
				return
			}
			if !sig.Malformed || !strings.Contains(sig.Problem, tc.wantProblem) || len(sig.RootVerified) != 0 || sig.Authority != "" {
				t.Fatalf("Legacy = %+v; want malformed, untrusted, problem saying %q", sig, tc.wantProblem)
			}
		})
	}
}

// untrustedChain is the PEM chain of the VirtualSigstore's own certificate
// authority, which the Sigstore's trusted root leaves out.
func untrustedChain(t *testing.T, s *testsign.Sigstore) string {
	t.Helper()
	l, err := s.SignLegacy(testsign.SimpleSigningPayload(repo, digestA), testsign.LegacyOptions{Cert: testsign.Cert{Email: "x@example.com", Issuer: mailIssuer, UntrustedCA: true}, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Annotations[testsign.ChainAnnotation]
	if !strings.Contains(c, "BEGIN CERTIFICATE") {
		t.Fatalf("untrusted chain %q, want PEM certificates", c)
	}
	return c
}

// editRekorBundle edits the Payload of a Rekor bundle annotation.
func editRekorBundle(t *testing.T, raw string, edit func(map[string]any)) string {
	t.Helper()
	var rb map[string]any
	if err := json.Unmarshal([]byte(raw), &rb); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(rb["Payload"].(map[string]any))
	}
	out, err := json.Marshal(rb)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rekorIndex is the log index a Rekor bundle annotation names.
func rekorIndex(t *testing.T, raw string) int64 {
	t.Helper()
	var rb struct{ Payload struct{ LogIndex int64 } }
	if err := json.Unmarshal([]byte(raw), &rb); err != nil {
		t.Fatal(err)
	}
	return rb.Payload.LogIndex
}

// withIssuerV1 adds the deprecated issuer extension, which Fulcio sets too.
func withIssuerV1(c testsign.Cert) testsign.Cert {
	c.Extensions = maps.Clone(c.Extensions)
	c.Extensions["oidcIssuerV1"] = c.Issuer
	return c
}
