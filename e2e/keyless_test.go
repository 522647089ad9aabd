package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

// Where a keyless policy finds the local Sigstore's trusted root.
const (
	trustedRootConfigMap = "local-sigstore"
	trustedRootKey       = "trusted_root.json"
)

// TestKeyless signs Helm charts keyless with the real `cosign sign` (v3):
// an ID token of a local OIDC issuer buys a certificate from a local Fulcio,
// the signature is logged in a local Rekor v2 and timestamped by a local
// timestamp authority (Rekor v2 has no integrated time). It checks that the
// real `chartproof verify`, `chartproof verify-blob` and manager accept a
// signature under a keyless policy naming its signer, and refuse it with
// IdentityMismatch under one naming another identity, and that cosign
// agrees each time.
func TestKeyless(t *testing.T) {
	cosign := newCosign(t, tools.cosignV3, true)
	ss := startSigstore(t, cosign)
	trustedRoot, err := os.ReadFile(ss.trustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t)

	// Two signers, each signing a chart of its own: an email address, and
	// a URI as CI systems have (a workflow at a ref).
	email := "release-bot@chartproof.example"
	workflow := ss.uri.URL + "/org/repo/.github/workflows/release.yaml@refs/tags/v1.0.0"
	signers := []struct {
		name        string
		issuer      *oidcIssuer
		subject     string
		subjectType string // as chartproof reports it
		repo        string
		// regExps names the signer by regular expressions: a control too.
		regExps chartproofv1.Identity
		// others are identities that are not the signer, each differing
		// from it in one part: the same chart and signature must be refused
		// under them.
		others []otherIdentity
	}{
		{
			name: "email", issuer: ss.email, subject: email, subjectType: "email", repo: chartRepo,
			regExps: chartproofv1.Identity{IssuerRegExp: `http://127\.0\.0\.1:[0-9]+`, SubjectRegExp: `[a-z-]+@chartproof\.example`},
			others: []otherIdentity{
				{name: "another subject", id: chartproofv1.Identity{Issuer: ss.email.URL, Subject: "someone-else@chartproof.example"}},
				// The other issuer Fulcio trusts.
				{name: "another issuer", id: chartproofv1.Identity{Issuer: ss.uri.URL, Subject: email}},
			},
		},
		{
			name: "uri", issuer: ss.uri, subject: workflow, subjectType: "uri", repo: "ci/hello", // the chart name is the last path element
			regExps: chartproofv1.Identity{Issuer: ss.uri.URL, SubjectRegExp: `http://127\.0\.0\.1:[0-9]+/org/repo/\.github/workflows/release\.yaml@refs/tags/v.*`},
			others: []otherIdentity{
				{name: "another subject", id: chartproofv1.Identity{Issuer: ss.uri.URL, Subject: ss.uri.URL + "/org/repo/.github/workflows/release.yaml@refs/heads/evil"}},
				{name: "another issuer", id: chartproofv1.Identity{Issuer: ss.email.URL, Subject: workflow}},
				// A prefix of the subject: chartproof anchors expressions,
				// cosign does not (docs/policy-keyless.md), so only cosign
				// accepts it.
				{name: "subject prefix expression", id: chartproofv1.Identity{Issuer: ss.uri.URL, SubjectRegExp: `http://127\.0\.0\.1:[0-9]+/org/repo/`}, cosignAccepts: true},
			},
		},
	}

	charts := map[string]keylessChart{}
	for _, s := range signers {
		charts[s.name] = signChart(t, cosign, ss, reg.Host, s.repo, s.issuer.token(t, s.subject))
	}

	t.Run("verify", func(t *testing.T) {
		for _, s := range signers {
			t.Run(s.name, func(t *testing.T) {
				c := charts[s.name]
				want := c.acceptance(s.issuer.URL, s.subject, s.subjectType)
				for _, id := range []chartproofv1.Identity{{Issuer: s.issuer.URL, Subject: s.subject}, s.regExps} {
					if res := cosign.run(cosignVerifyArgs(ss, id, "verify", "--allow-http-registry", c.ref)...); res.code != 0 {
						t.Errorf("cosign verify naming the signer %+v: got %s, want exit 0", id, res)
					}
					res, _ := chartproofVerify(t, "oci://"+c.ref, writeKeylessPolicyFile(t, c.repository, trustedRoot, id))
					out := parseKeyless(t, res)
					if res.code != 0 || !out.Allowed || !out.Passed || out.Digest != c.digest {
						t.Errorf("chartproof verify naming the signer %+v: got exit %d allowed=%t passed=%t digest %s, want exit 0, allowed, passed, digest %s\n%s",
							id, res.code, out.Allowed, out.Passed, out.Digest, c.digest, res)
						continue
					}
					checkAccepted(t, "chartproof verify", out.Accepted, want, c.before, c.after)
				}

				for _, other := range s.others {
					t.Run(other.name, func(t *testing.T) {
						res, _ := chartproofVerify(t, "oci://"+c.ref, writeKeylessPolicyFile(t, c.repository, trustedRoot, other.id))
						out := parseKeyless(t, res)
						if res.code != 1 || out.Allowed || out.Inconclusive || !slices.Equal(out.codes(), []string{chartproofv1.ReasonIdentityMismatch}) {
							t.Errorf("chartproof verify naming %+v: got exit %d allowed=%t inconclusive=%t reasons %v, want exit 1, denied, reasons [IdentityMismatch]\n%s",
								other.id, res.code, out.Allowed, out.Inconclusive, out.codes(), res)
						}
						res = cosign.run(cosignVerifyArgs(ss, other.id, "verify", "--allow-http-registry", c.ref)...)
						if (res.code == 0) != other.cosignAccepts {
							t.Errorf("cosign verify naming %+v: got %s, want it to accept: %t", other.id, res, other.cosignAccepts)
						}
					})
				}
			})
		}
	})

	// Issue 12, item 1: an identity revoked from a cutoff. The email signer
	// signs a second chart after the cutoff; under the revocation, what it
	// signed before (by the TSA's verified signing time) still counts, what
	// it signed after does not (SignerRevoked). The control is the same two
	// charts under the same policy without the revocation.
	t.Run("identity revoked from a cutoff", func(t *testing.T) {
		s := signers[0]
		early := charts[s.name]
		cutoff := early.after.Add(time.Second).Truncate(time.Second) // signedAfter has a precision of one second
		time.Sleep(time.Until(cutoff))                               // the cutoff is a time on the clock
		late := signChart(t, cosign, ss, reg.Host, "cutoff/hello", s.issuer.token(t, s.subject))
		if late.before.Before(cutoff) {
			t.Fatalf("signed at %v, before the cutoff %v", late.before, cutoff)
		}
		for _, tc := range []struct {
			name   string
			c      keylessChart
			revoke bool
			want   string
		}{
			{"control: signed before, nothing revoked", early, false, chartproofv1.ReasonVerified},
			{"control: signed after, nothing revoked", late, false, chartproofv1.ReasonVerified},
			{"signed before the cutoff", early, true, chartproofv1.ReasonVerified},
			{"signed after the cutoff", late, true, chartproofv1.ReasonSignerRevoked},
		} {
			spec := keylessPolicySpec(reg.Host+"/**", policyFileNamespace, chartproofv1.Identity{Issuer: s.issuer.URL, Subject: s.subject})
			if tc.revoke {
				spec.Revocations = &chartproofv1.Revocations{RevocationList: chartproofv1.RevocationList{Identities: []chartproofv1.RevokedIdentity{{
					Issuer: s.issuer.URL, Subject: s.subject, SignedAfter: &metav1.Time{Time: cutoff},
				}}}}
			}
			res, _ := chartproofVerify(t, "oci://"+tc.c.ref, writePolicyWithRoot(t, spec, trustedRoot))
			out := parseKeyless(t, res)
			got := chartproofv1.ReasonVerified
			if !out.Passed {
				got = strings.Join(out.codes(), ",")
			}
			if got != tc.want {
				t.Errorf("%s: chartproof verify: %s, want %s\n%s", tc.name, got, tc.want, res)
			}
		}
	})

	// The manager and verify-blob: the email signer's chart.
	signer, other := signers[0], signers[0].others[0]
	c := charts[signer.name]
	wantChart := c.acceptance(signer.issuer.URL, signer.subject, signer.subjectType)

	t.Run("manager", func(t *testing.T) {
		// Without leader election, as TestCosignInterop runs it.
		manager, _ := startManager(t, "--leader-elect=false")
		t.Cleanup(func() { stopManager(t, manager) })
		ns := newNamespace(t, "e2e-keyless-")
		mustCreate(t, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: trustedRootConfigMap},
			Data:       map[string]string{trustedRootKey: string(trustedRoot)},
		})
		mustCreate(t, newKeylessTrustPolicy(ns, "signer", c.repository, chartproofv1.Identity{Issuer: signer.issuer.URL, Subject: signer.subject}))
		mustCreate(t, newKeylessTrustPolicy(ns, "other", c.repository, other.id))
		t.Cleanup(func() { deleteReleases(t, manager, ns, "trusted", "untrusted") })
		mustCreate(t, newRelease(ns, "trusted", "oci://"+c.repository, chartVersion, "signer"))
		mustCreate(t, newRelease(ns, "untrusted", "oci://"+c.repository, chartVersion, "other"))

		vhr := waitCondition(t, manager, ns, "trusted", chartproofv1.ConditionReady, metav1.ConditionTrue, "")
		if inst := vhr.Status.Installed; inst == nil || inst.Digest != c.digest || !inst.Verified {
			t.Errorf("trusted: status.installed: got %+v, want digest %s, verified", inst, c.digest)
		}
		if len(vhr.Status.Evidence) != 1 {
			t.Fatalf("trusted: status.evidence: got %+v, want one signature", vhr.Status.Evidence)
		}
		// The evidence records the signer, the log entry and the signing
		// time.
		e := vhr.Status.Evidence[0]
		want := chartproofv1.SignatureEvidence{Authority: wantChart.Authority, Layout: wantChart.Layout, Signature: wantChart.Signature,
			Issuer: wantChart.Identity.Issuer, Subject: wantChart.Identity.Subject, LogID: wantChart.Log.LogID, LogIndex: &wantChart.Log.Index}
		if diff := cmp.Diff(want, e, cmpopts.IgnoreFields(chartproofv1.SignatureEvidence{}, "VerifiedAt", "SignedAt")); diff != "" {
			t.Errorf("trusted: status.evidence (-want +got):\n%s", diff)
		}
		var signedAt *time.Time
		if e.SignedAt != nil {
			signedAt = &e.SignedAt.Time
		}
		checkSignedAt(t, "trusted: status.evidence", signedAt, c.before, c.after)
		checkInstalled(t, ns, "trusted", c.digest)

		vhr = waitCondition(t, manager, ns, "untrusted", chartproofv1.ConditionVerified, metav1.ConditionFalse, chartproofv1.ReasonIdentityMismatch)
		ready := apimeta.FindStatusCondition(vhr.Status.Conditions, chartproofv1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != chartproofv1.ReasonIdentityMismatch {
			t.Errorf("untrusted: Ready: got %+v, want False IdentityMismatch", ready)
		}
		if vhr.Status.Installed != nil || vhr.Status.ResolvedDigest != c.digest || len(vhr.Status.Evidence) != 0 {
			t.Errorf("untrusted: status: installed %+v, resolvedDigest %s, evidence %+v; want nothing installed, resolvedDigest %s, no evidence",
				vhr.Status.Installed, vhr.Status.ResolvedDigest, vhr.Status.Evidence, c.digest)
		}
		checkNothingInstalled(t, ns, "untrusted")
	})

	t.Run("verify-blob", func(t *testing.T) {
		dir := t.TempDir()
		blob := filepath.Join(dir, "artifact.txt")
		writeFile(t, blob, []byte("a small file, signed keyless\n"))
		blobBundle := filepath.Join(dir, "artifact.sigstore.json")
		blobBefore := time.Now()
		cosign.mustRun("sign-blob", "--yes", "--identity-token", signer.issuer.token(t, signer.subject),
			"--signing-config", ss.signingConfig, "--trusted-root", ss.trustedRoot, "--bundle", blobBundle, blob)
		blobAfter := time.Now()
		blobLog := readBundle(t, blobBundle, "messageSignature")
		// In the same log as the chart's signature, after it.
		if blobLog.LogID != c.log.LogID || blobLog.Index <= c.log.Index {
			t.Errorf("blob's log entry %+v, want one in log %s after the chart's, %d", blobLog, c.log.LogID, c.log.Index)
		}

		// The OCI signature's bundle (DSSE over cosign's statement naming
		// the manifest digest) verifies over the manifest too, given as its
		// digest or as the manifest's bytes. cosign verify-blob takes only a
		// file; given a digest, cosign checks the bundle's statement with
		// verify-blob-attestation.
		manifest := filepath.Join(dir, "manifest.json")
		writeFile(t, manifest, fetchManifest(t, c.ref))
		verifyBlob := func(bundle string) func(string) []string {
			return func(artifact string) []string { return []string{"verify-blob", "--bundle", bundle, artifact} }
		}
		verifyStatement := func(digest string) []string {
			return []string{"verify-blob-attestation", "--bundle", c.bundle, "--type", "https://sigstore.dev/cosign/sign/v1",
				"--digestAlg", "sha256", "--digest", strings.TrimPrefix(digest, "sha256:")}
		}

		cases := []struct {
			name   string
			bundle string
			// artifact is what the bundle signs, as a file or a digest;
			// another is not it, in the same form.
			artifact, another string
			// cosign is cosign's command and its arguments over an artifact,
			// besides the trusted root and the identity.
			cosign func(artifact string) []string
			// log is the bundle's log entry; before and after are the
			// times around the signing.
			log           *logEntryOut
			before, after time.Time
		}{
			{"message signature over a file", blobBundle, blob, manifest, verifyBlob(blobBundle), blobLog, blobBefore, blobAfter},
			{"OCI bundle over the manifest digest", c.bundle, c.digest, fileDigest(t, blob), verifyStatement, c.log, c.before, c.after},
			{"OCI bundle over the manifest", c.bundle, manifest, blob, verifyBlob(c.bundle), c.log, c.before, c.after},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := chartproofv1.Identity{Issuer: signer.issuer.URL, Subject: signer.subject}
				res, out := chartproofVerifyBlob(t, ss, tc.bundle, id, tc.artifact)
				if res.code != 0 || !out.Allowed {
					t.Errorf("chartproof verify-blob naming the signer: got exit %d allowed=%t, want exit 0, allowed\n%s", res.code, out.Allowed, res)
				} else {
					// verify-blob's authority is "keyless"; its signature is
					// the bundle's sha256.
					want := keylessAcceptance{Authority: "keyless", Layout: layoutBundle, Signature: fileDigest(t, tc.bundle),
						Identity: wantChart.Identity, Log: tc.log}
					checkAccepted(t, "chartproof verify-blob", out.Accepted, want, tc.before, tc.after)
				}
				cmd := tc.cosign(tc.artifact)
				if res := cosign.run(cosignVerifyArgs(ss, id, cmd[0], cmd[1:]...)...); res.code != 0 {
					t.Errorf("cosign %s naming the signer: got %s, want exit 0", cmd[0], res)
				}

				for _, other := range signer.others {
					res, out := chartproofVerifyBlob(t, ss, tc.bundle, other.id, tc.artifact)
					if res.code != 1 || out.Allowed || !slices.Equal(out.codes(), []string{chartproofv1.ReasonIdentityMismatch}) {
						t.Errorf("chartproof verify-blob naming %+v (%s): got exit %d allowed=%t reasons %v, want exit 1, denied, reasons [IdentityMismatch]\n%s",
							other.id, other.name, res.code, out.Allowed, out.codes(), res)
					}
					res = cosign.run(cosignVerifyArgs(ss, other.id, cmd[0], cmd[1:]...)...)
					if (res.code == 0) != other.cosignAccepts {
						t.Errorf("cosign %s naming %+v (%s): got %s, want it to accept: %t", cmd[0], other.id, other.name, res, other.cosignAccepts)
					}
				}

				// The signer, over another artifact: both compare the
				// artifact's digest, so agreement above is not vacuous.
				res, out = chartproofVerifyBlob(t, ss, tc.bundle, id, tc.another)
				if res.code != 1 || out.Allowed || !slices.Equal(out.codes(), []string{chartproofv1.ReasonSubjectMismatch}) {
					t.Errorf("chartproof verify-blob over another artifact: got exit %d allowed=%t reasons %v, want exit 1, denied, reasons [SubjectMismatch]\n%s",
						res.code, out.Allowed, out.codes(), res)
				}
				cmd = tc.cosign(tc.another)
				if res := cosign.run(cosignVerifyArgs(ss, id, cmd[0], cmd[1:]...)...); res.code == 0 {
					t.Errorf("cosign %s over another artifact: got exit 0, want a failure\n%s", cmd[0], res)
				}
			})
		}
	})
}

// otherIdentity is an identity that is not the signer's.
type otherIdentity struct {
	name string
	id   chartproofv1.Identity
	// cosignAccepts is set where cosign accepts it by design.
	cosignAccepts bool
}

// keylessChart is a chart cosign signed keyless.
type keylessChart struct {
	repository, digest string
	ref                string       // repository@digest
	sigManifest        string       // the digest of the manifest holding the bundle
	bundle             string       // the bundle, in a file
	log                *logEntryOut // the bundle's Rekor v2 entry
	before, after      time.Time    // around the signing
}

// signChart pushes chartVersion of the hello chart to host/repo and signs
// it with `cosign sign` using token. It checks that cosign pushed one
// Sigstore bundle, in the referrers fallback tag (the distribution
// registry has no referrers API), logged in Rekor v2 and timestamped by
// the TSA.
func signChart(t *testing.T, cosign *cosignCLI, ss *sigstore, host, repo, token string) keylessChart {
	t.Helper()
	c := keylessChart{repository: host + "/" + repo, digest: pushChart(t, host, repo, chartVersion)}
	c.ref = c.repository + "@" + c.digest
	c.before = time.Now()
	cosign.mustRun("sign", "--yes", "--identity-token", token,
		"--signing-config", ss.signingConfig, "--trusted-root", ss.trustedRoot, "--allow-http-registry", c.ref)
	c.after = time.Now()

	index, err := remote.Get(mustRef(t, c.repository+":"+strings.Replace(c.digest, ":", "-", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c.sigManifest = oneBundleReferrer(t, "referrers fallback tag", index.Manifest, testsign.BundleMediaType)
	img, err := remote.Image(mustRef(t, c.repository+"@"+c.sigManifest))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("signature manifest %s has %d layers, want 1 (the bundle)", c.sigManifest, len(layers))
	}
	rc, err := layers[0].Compressed() // the blob as stored: the bundle's JSON
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(rc).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	c.bundle = filepath.Join(t.TempDir(), "bundle.sigstore.json")
	writeFile(t, c.bundle, raw)
	c.log = readBundle(t, c.bundle, "dsseEnvelope")
	return c
}

// acceptance is what chartproof must report when the policy authority "ci"
// accepts the chart's signature, made by the signer subject of issuer: the
// bundle's manifest, the signer and the Rekor v2 entry. (And a signing time,
// which only the TSA vouches for: see checkSignedAt.)
func (c keylessChart) acceptance(issuer, subject, subjectType string) keylessAcceptance {
	return keylessAcceptance{
		Authority: "ci", Layout: layoutBundle, Signature: c.sigManifest,
		Identity: &certIdentity{Issuer: issuer, Subject: subject, SubjectType: subjectType},
		Log:      c.log,
	}
}

// readBundle reads a Sigstore bundle file whose content is content
// (dsseEnvelope or messageSignature) and returns its log entry. It checks
// that the entry has no integrated time (Rekor v2) and that the bundle
// carries an RFC 3161 timestamp instead.
func readBundle(t *testing.T, path, content string) *logEntryOut {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				LogIndex       string                 `json:"logIndex"`
				LogID          struct{ KeyID string } `json:"logId"`
				IntegratedTime string                 `json:"integratedTime"`
			} `json:"tlogEntries"`
			TimestampVerificationData struct {
				RFC3161Timestamps []json.RawMessage `json:"rfc3161Timestamps"`
			} `json:"timestampVerificationData"`
		} `json:"verificationMaterial"`
		DSSEEnvelope     json.RawMessage `json:"dsseEnvelope"`
		MessageSignature json.RawMessage `json:"messageSignature"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("bundle %s: %v", path, err)
	}
	var got string // the bundle's content: exactly one of the two
	switch {
	case b.DSSEEnvelope != nil && b.MessageSignature == nil:
		got = "dsseEnvelope"
	case b.MessageSignature != nil && b.DSSEEnvelope == nil:
		got = "messageSignature"
	}
	if got != content {
		t.Fatalf("bundle %s: content %q, want %s\n%s", path, got, content, raw)
	}
	vm := b.VerificationMaterial
	if len(vm.TlogEntries) != 1 || (vm.TlogEntries[0].IntegratedTime != "" && vm.TlogEntries[0].IntegratedTime != "0") {
		t.Fatalf("bundle %s: tlog entries %+v, want one without integrated time (Rekor v2)\n%s", path, vm.TlogEntries, raw)
	}
	if len(vm.TimestampVerificationData.RFC3161Timestamps) != 1 {
		t.Fatalf("bundle %s: %d RFC 3161 timestamps, want 1 (the TSA's)\n%s", path, len(vm.TimestampVerificationData.RFC3161Timestamps), raw)
	}
	var index int64 // protojson leaves out the first entry's index, 0
	if s := vm.TlogEntries[0].LogIndex; s != "" {
		if index, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("bundle %s: log index %q: %v", path, s, err)
		}
	}
	logID, err := base64.StdEncoding.DecodeString(vm.TlogEntries[0].LogID.KeyID)
	if err != nil {
		t.Fatalf("bundle %s: log ID %q: %v", path, vm.TlogEntries[0].LogID.KeyID, err)
	}
	return &logEntryOut{LogID: hex.EncodeToString(logID), Index: index}
}

// checkAccepted checks that chartproof accepted exactly one signature, want,
// signed between before and after.
func checkAccepted(t *testing.T, what string, accepted []keylessAcceptance, want keylessAcceptance, before, after time.Time) {
	t.Helper()
	if len(accepted) != 1 {
		t.Fatalf("%s: accepted %+v, want one signature", what, accepted)
	}
	got := accepted[0]
	checkSignedAt(t, what, got.SignedAt, before, after)
	got.SignedAt = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: accepted (-want +got):\n%s", what, diff)
	}
}

// checkSignedAt checks that a signing time was reported, and that it lies
// between before and after, the times around the signing command; RFC 3161
// times may be rounded to the second.
func checkSignedAt(t *testing.T, what string, signedAt *time.Time, before, after time.Time) {
	t.Helper()
	if signedAt == nil {
		t.Errorf("%s: no signing time, want the TSA's (between %s and %s)", what, before, after)
		return
	}
	if signedAt.Before(before.Add(-time.Second)) || signedAt.After(after.Add(time.Second)) {
		t.Errorf("%s: signing time %s, want between %s and %s", what, signedAt, before, after)
	}
}

// cosignVerifyArgs are the arguments of `cosign verify` or `cosign
// verify-blob` (command) naming id, under the local Sigstore's trusted
// root, followed by rest. The trusted root lists no CT log, so there is no
// SCT to check.
func cosignVerifyArgs(ss *sigstore, id chartproofv1.Identity, command string, rest ...string) []string {
	args := append([]string{command, "--trusted-root", ss.trustedRoot, "--insecure-ignore-sct"}, identityFlags(id)...)
	return append(args, rest...)
}

// chartproofVerifyBlob runs the real `chartproof verify-blob ... --output
// json` naming id, under the local Sigstore's trusted root.
func chartproofVerifyBlob(t *testing.T, ss *sigstore, bundle string, id chartproofv1.Identity, artifact string) (result, keylessOutput) {
	t.Helper()
	args := append([]string{"verify-blob", "--bundle", bundle, "--trusted-root", ss.trustedRoot, "--output", "json"}, identityFlags(id)...)
	res := runCLI(t, append(args, artifact)...)
	return res, parseKeyless(t, res)
}

// identityFlags are the flags of cosign and `chartproof verify-blob` naming
// id (the same names).
func identityFlags(id chartproofv1.Identity) []string {
	var flags []string
	for _, f := range []struct{ flag, value string }{
		{"--certificate-identity", id.Subject},
		{"--certificate-identity-regexp", id.SubjectRegExp},
		{"--certificate-oidc-issuer", id.Issuer},
		{"--certificate-oidc-issuer-regexp", id.IssuerRegExp},
	} {
		if f.value != "" {
			flags = append(flags, f.flag, f.value)
		}
	}
	return flags
}

// fileDigest is the sha256:HEX digest of a file.
func fileDigest(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// keylessOutput is verifyOutput with what chartproof reports of a keyless
// signature.
type keylessOutput struct {
	verifyOutput
	Accepted []keylessAcceptance `json:"accepted"`
}

// keylessAcceptance is one accepted keyless signature, as `chartproof
// verify` and `chartproof verify-blob` print it.
type keylessAcceptance struct {
	Authority string        `json:"authority"`
	KeyID     string        `json:"keyID"`
	Layout    string        `json:"layout"`
	Signature string        `json:"signature"`
	Identity  *certIdentity `json:"identity"`
	Log       *logEntryOut  `json:"log"`
	SignedAt  *time.Time    `json:"signedAt"`
}

type certIdentity struct {
	Issuer      string            `json:"issuer"`
	Subject     string            `json:"subject"`
	SubjectType string            `json:"subjectType"`
	Extensions  map[string]string `json:"extensions"`
}

type logEntryOut struct {
	LogID string `json:"logID"`
	Index int64  `json:"index"`
}

func parseKeyless(t *testing.T, res result) keylessOutput {
	t.Helper()
	var out keylessOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("chartproof output is not JSON: %v\n%s", err, res)
	}
	return out
}

// keylessPolicySpec is the spec of a policy in Enforce mode with one
// keyless authority "ci" naming id, for the repositories matching glob,
// under the trusted root in ConfigMap trustedRootConfigMap of namespace (""
// for a TrustPolicy: its own).
func keylessPolicySpec(glob, namespace string, id chartproofv1.Identity) chartproofv1.TrustPolicySpec {
	return chartproofv1.TrustPolicySpec{
		Repositories: []string{glob},
		Authorities: []chartproofv1.Authority{{Name: "ci", Keyless: &chartproofv1.KeylessAuthority{
			TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{
				Namespace: namespace, Name: trustedRootConfigMap, Key: trustedRootKey}},
			Identities: []chartproofv1.Identity{id},
		}}},
		Threshold: 1,
		Mode:      chartproofv1.ModeEnforce,
	}
}

// newKeylessTrustPolicy is a TrustPolicy in ns naming id, under the trusted
// root in the namespace's ConfigMap trustedRootConfigMap.
func newKeylessTrustPolicy(ns, name, glob string, id chartproofv1.Identity) *chartproofv1.TrustPolicy {
	return &chartproofv1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       keylessPolicySpec(glob, "", id),
	}
}

// writeKeylessPolicyFile writes a ClusterTrustPolicy naming id for
// repository, and the ConfigMap holding trustedRoot it references, as
// `chartproof verify --policy` reads them.
func writeKeylessPolicyFile(t *testing.T, repository string, trustedRoot []byte, id chartproofv1.Identity) string {
	t.Helper()
	return writePolicyWithRoot(t, keylessPolicySpec(repository, policyFileNamespace, id), trustedRoot)
}

// fetchManifest returns the manifest ref (host/repo@digest) names, as
// stored.
func fetchManifest(t *testing.T, ref string) []byte {
	t.Helper()
	desc, err := remote.Get(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return desc.Manifest
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
