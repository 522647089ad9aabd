package gate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

const (
	slsaV1   = "https://slsa.dev/provenance/v1"
	spdxType = "https://spdx.dev/Document"
)

// githubProvenance is the SLSA v1 predicate GitHub's
// attest-build-provenance writes, with the workflow's repository and ref
// and the builder as given.
func githubProvenance(repository, ref, builder string) string {
	return `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",` +
		`"externalParameters":{"workflow":{"ref":"` + ref + `","repository":"` + repository + `","path":".github/workflows/release.yml"}},` +
		`"internalParameters":{"github":{"event_name":"push","repository_id":"1","repository_owner_id":"2"}},` +
		`"resolvedDependencies":[{"uri":"git+` + repository + `@` + ref + `","digest":{"gitCommit":"7b3f0c1d"}}]},` +
		`"runDetails":{"builder":{"id":"` + builder + `"},"metadata":{"invocationId":"` + repository + `/actions/runs/1/attempts/1"}}}`
}

const (
	goodRepo    = "https://github.com/example/charts"
	goodRef     = "refs/heads/main"
	goodBuilder = "https://github.com/actions/runner/github-hosted"
	// provenanceCondition is the policy docs/policy-provenance.md shows.
	provenanceCondition = `predicate.buildDefinition.buildType == "https://actions.github.io/buildtypes/workflow/v1" &&
predicate.buildDefinition.externalParameters.workflow.repository == "` + goodRepo + `" &&
predicate.buildDefinition.externalParameters.workflow.ref == "` + goodRef + `" &&
predicate.buildDefinition.externalParameters.all(k, k == "workflow") &&
predicate.runDetails.builder.id == "` + goodBuilder + `"`
)

// compileAttesting is a policy whose chart signatures come from release
// and which requires SLSA provenance signed by builder, satisfying
// provenanceCondition.
func compileAttesting(t *testing.T, host string, release, builder *testsign.Key) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{host + "/charts/**"},
		Authorities:  []chartproofv1.Authority{{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: release.PublicPEM()}}},
		Attestations: []chartproofv1.AttestationRequirement{{
			Name:          "provenance",
			PredicateType: slsaV1,
			Authorities:   []chartproofv1.Authority{{Name: "builder", Key: &chartproofv1.KeyAuthority{PublicKey: builder.PublicPEM()}}},
			Condition:     provenanceCondition,
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.ForPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

// TestAttestationLayouts (issue 15): SLSA provenance found in each layout
// the ecosystem writes is accepted when it satisfies the condition — cosign
// v2's `.att` tag, a bundle referrer through the referrers API, and one in
// the fallback tag that lost its annotations (cosign#4641) — and the
// verdict names the requirement that held. The chart's own signature is a
// key signature either way; the builder's key counts for the attestation
// only.
func TestAttestationLayouts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		referrersAPI bool
		attach       func(reg testsign.Registry, repo, digest string, stmt []byte, k *testsign.Key) error
		layout       policy.Layout
	}{
		{"cosign v2 .att tag", true, func(reg testsign.Registry, repo, d string, stmt []byte, k *testsign.Key) error {
			env, err := testsign.DSSEEnvelope(stmt, k)
			if err != nil {
				return err
			}
			return reg.AttachLegacyAttestation(repo, d, env, slsaV1)
		}, policy.LayoutCosignLegacy},
		{"bundle referrer, referrers API", true, func(reg testsign.Registry, repo, d string, stmt []byte, k *testsign.Key) error {
			b, err := testsign.Bundle(stmt, k)
			if err != nil {
				return err
			}
			_, err = reg.AttachBundleAs(repo, d, b, slsaV1, false)
			return err
		}, policy.LayoutSigstoreBundle},
		{"bundle referrer, fallback tag without annotations", false, func(reg testsign.Registry, repo, d string, stmt []byte, k *testsign.Key) error {
			b, err := testsign.Bundle(stmt, k)
			if err != nil {
				return err
			}
			_, err = reg.AttachBundleAs(repo, d, b, "", true)
			return err
		}, policy.LayoutSigstoreBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, tc.referrersAPI)
			release, _ := testsign.NewKey("p256")
			builder, _ := testsign.NewKey("p256")
			digest := pushChart(t, reg, "charts/hello", "1.0.0")
			// Without the referrers API the chart's own signature is a
			// bundle in the fallback tag too, its manifest without
			// annotations: before the provenance is attached, that
			// signature is all the tag lists, and it is not an attestation
			// missing its signer.
			sign := func() error { return reg.SignLegacy("charts/hello", digest, digest, release) }
			if !tc.referrersAPI {
				sign = func() error {
					b, err := testsign.Bundle(testsign.Statement(reg.Host+"/charts/hello", digest), release)
					if err != nil {
						return err
					}
					_, err = reg.AttachBundleAs("charts/hello", digest, b, "", true)
					return err
				}
			}
			if err := sign(); err != nil {
				t.Fatal(err)
			}
			p, v := compileAttesting(t, reg.Host, release, builder)
			check := func() gate.Result {
				return gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
					URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
				})
			}
			// Before the attestation is attached: signed, yet refused.
			if res := check(); res.Verdict.Code() != chartproofv1.ReasonAttestationMissing {
				t.Fatalf("without provenance: %s %+v; want AttestationMissing", res.Verdict.Code(), res.Verdict.Reasons)
			}
			stmt := testsign.AttestationStatement(slsaV1, githubProvenance(goodRepo, goodRef, goodBuilder), reg.Host+"/charts/hello", digest)
			if err := tc.attach(reg, "charts/hello", digest, stmt, builder); err != nil {
				t.Fatal(err)
			}
			res := check()
			if !res.Verdict.Passed() {
				t.Fatalf("with provenance: %s %+v; want Verified", res.Verdict.Code(), res.Verdict.Reasons)
			}
			if len(res.Verdict.Attestations) != 1 {
				t.Fatalf("attestations held: %+v; want provenance", res.Verdict.Attestations)
			}
			h := res.Verdict.Attestations[0]
			if h.Name != "provenance" || h.PredicateType != slsaV1 || h.Authority != "provenance/builder" || h.Layout != tc.layout {
				t.Errorf("held %+v; want provenance (%s) by provenance/builder in %s", h, slsaV1, tc.layout)
			}
			if len(res.Verdict.Accepted) != 1 || res.Verdict.Accepted[0].Authority != "release" {
				t.Errorf("accepted %+v; want the release key alone", res.Verdict.Accepted)
			}
		})
	}
}

// TestAttestationRefusals (issue 15; BND-05, BND-06): each attack on
// provenance is refused with its own reason code, and its control twin —
// the same set-up without the attack — passes, so the refusal is for the
// reason named.
func TestAttestationRefusals(t *testing.T) {
	good := githubProvenance(goodRepo, goodRef, goodBuilder)
	type setup struct {
		predicateType, claimed, predicate string
		otherDigest, untrusted            bool
		// chartByBuilder signs the chart with the builder's key instead of
		// the release key: an attestation's own authority does not count
		// for the chart.
		chartByBuilder bool
		// statement, when set, is the signed payload, made from the
		// chart's manifest digest and its chart layer's digest.
		statement func(manifest, layer string) []byte
	}
	control := setup{predicateType: slsaV1, claimed: slsaV1, predicate: good}
	// subjects is an SLSA statement of the good predicate naming n
	// subjects, the last of them digest.
	subjects := func(n int) func(manifest, layer string) []byte {
		return func(manifest, _ string) []byte {
			ds := make([]string, n)
			for i := range ds {
				ds[i] = fmt.Sprintf("sha256:%064x", i)
			}
			ds[n-1] = manifest
			return testsign.AttestationStatement(slsaV1, good, "charts/hello", ds...)
		}
	}
	layouts := []struct {
		name   string
		attach func(reg testsign.Registry, digest string, stmt []byte, k *testsign.Key, claimed string) error
	}{
		{"att", func(reg testsign.Registry, d string, stmt []byte, k *testsign.Key, claimed string) error {
			env, err := testsign.DSSEEnvelope(stmt, k)
			if err != nil {
				return err
			}
			return reg.AttachLegacyAttestation("charts/hello", d, env, claimed)
		}},
		{"referrer", func(reg testsign.Registry, d string, stmt []byte, k *testsign.Key, claimed string) error {
			b, err := testsign.Bundle(stmt, k)
			if err != nil {
				return err
			}
			_, err = reg.AttachBundleAs("charts/hello", d, b, claimed, false)
			return err
		}},
	}
	for _, tc := range []struct {
		name   string
		attack setup
		want   string
		found  string // in the first reason's Found
		// twin, when set, is the control instead of the shared one.
		twin *setup
	}{
		{name: "statement for another digest", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: good, otherDigest: true},
			want: chartproofv1.ReasonAttestationSubjectMismatch},
		// BND-06 (a): the subject is the manifest digest, not the chart's
		// layer.
		{name: "subject is the chart layer", attack: setup{predicateType: slsaV1, claimed: slsaV1, statement: func(_, layer string) []byte {
			return testsign.AttestationStatement(slsaV1, good, "charts/hello", layer)
		}}, want: chartproofv1.ReasonAttestationSubjectMismatch},
		// BND-06 (c): sha256 is required.
		{name: "subject by sha512 only", attack: setup{predicateType: slsaV1, claimed: slsaV1, statement: func(manifest, _ string) []byte {
			return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"charts/hello","digest":{"sha512":"` +
				strings.Repeat("ab", 64) + `"}}],"predicateType":"` + slsaV1 + `","predicate":` + good + `}`)
		}}, want: chartproofv1.ReasonAttestationSubjectMismatch},
		// BND-06 (b): over the cap of subjects, though one is the chart;
		// its twin names as many as the cap allows.
		{name: "more subjects than the cap", attack: setup{predicateType: slsaV1, claimed: slsaV1, statement: subjects(limits.MaxStatementSubjects + 1)},
			want: chartproofv1.ReasonAttestationMissing, found: fmt.Sprintf("more than %d", limits.MaxStatementSubjects),
			twin: &setup{predicateType: slsaV1, claimed: slsaV1, statement: subjects(limits.MaxStatementSubjects)}},
		// BND-05: only an SBOM, listed as one; a statement that is not
		// JSON, listed as provenance.
		{name: "only an SPDX attestation", attack: setup{predicateType: spdxType, claimed: spdxType, predicate: `{"spdxVersion":"SPDX-2.3"}`},
			want: chartproofv1.ReasonAttestationMissing, found: spdxType},
		{name: "registry claims SLSA, statement is SPDX", attack: setup{predicateType: spdxType, claimed: slsaV1, predicate: `{"spdxVersion":"SPDX-2.3"}`},
			want: chartproofv1.ReasonPredicateTypeMismatch, found: spdxType},
		{name: "statement not JSON", attack: setup{predicateType: slsaV1, claimed: slsaV1, statement: func(string, string) []byte {
			return []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"` + slsaV1 + `",`)
		}}, want: chartproofv1.ReasonAttestationMissing, found: "malformed"},
		{name: "wrong builder", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: githubProvenance(goodRepo, goodRef, "https://example.com/self-hosted")},
			want: chartproofv1.ReasonPredicateRejected, found: "false"},
		{name: "wrong source repository", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: githubProvenance("https://github.com/attacker/charts", goodRef, goodBuilder)},
			want: chartproofv1.ReasonPredicateRejected, found: "false"},
		{name: "wrong ref", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: githubProvenance(goodRepo, "refs/heads/feature", goodBuilder)},
			want: chartproofv1.ReasonPredicateRejected, found: "false"},
		// BND-06 (d) and SLSA's "verifying artifacts": an external
		// parameter the policy does not know fails.
		{name: "unknown external parameter", attack: setup{predicateType: slsaV1, claimed: slsaV1,
			predicate: strings.Replace(good, `"externalParameters":{`, `"externalParameters":{"inputs":{"skip-tests":"true"},`, 1)},
			want: chartproofv1.ReasonPredicateRejected, found: "false"},
		{name: "predicate missing the fields", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: `{"builder":{"id":"x"}}`},
			want: chartproofv1.ReasonPredicateRejected, found: "evaluation failed"},
		{name: "untrusted signer", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: good, untrusted: true},
			want: chartproofv1.ReasonUntrustedSigner, found: "does not verify"},
		{name: "chart signed by the builder's key", attack: setup{predicateType: slsaV1, claimed: slsaV1, predicate: good, chartByBuilder: true},
			want: chartproofv1.ReasonUntrustedSigner},
	} {
		twinSetup := control
		if tc.twin != nil {
			twinSetup = *tc.twin
		}
		for _, layout := range layouts {
			t.Run(layout.name+"/"+tc.name, func(t *testing.T) {
				for _, twin := range []struct {
					name string
					s    setup
				}{{"attack", tc.attack}, {"control", twinSetup}} {
					reg := newRegistry(t, true)
					release, _ := testsign.NewKey("p256")
					builder, _ := testsign.NewKey("p256")
					digest := pushChart(t, reg, "charts/hello", "1.0.0")
					other := pushChart(t, reg, "charts/hello", "2.0.0")
					chartKey := release
					if twin.s.chartByBuilder {
						chartKey = builder
					}
					if err := reg.SignLegacy("charts/hello", digest, digest, chartKey); err != nil {
						t.Fatal(err)
					}
					subject, signer := digest, builder
					if twin.s.otherDigest {
						subject = other
					}
					if twin.s.untrusted {
						signer, _ = testsign.NewKey("p256")
					}
					stmt := testsign.AttestationStatement(twin.s.predicateType, twin.s.predicate, reg.Host+"/charts/hello", subject)
					if twin.s.statement != nil {
						stmt = twin.s.statement(digest, chartLayer(t, reg, "charts/hello", digest))
					}
					if err := layout.attach(reg, digest, stmt, signer, twin.s.claimed); err != nil {
						t.Fatal(err)
					}
					p, v := compileAttesting(t, reg.Host, release, builder)
					res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
						URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
					})
					if twin.name == "control" {
						if !res.Verdict.Passed() {
							t.Fatalf("control: %s %+v; want Verified", res.Verdict.Code(), res.Verdict.Reasons)
						}
						continue
					}
					if res.Verdict.Allowed() || res.Verdict.Code() != tc.want {
						t.Fatalf("attack: allowed %v, %s %+v; want %s", res.Verdict.Allowed(), res.Verdict.Code(), res.Verdict.Reasons, tc.want)
					}
					if len(res.Verdict.Attestations) != 0 {
						t.Errorf("a denial lists attestations held: %+v", res.Verdict.Attestations)
					}
					r := res.Verdict.Reasons[0]
					if twin.s.chartByBuilder {
						if strings.Contains(r.Message, "attestation") {
							t.Errorf("reason %+v; want the chart's signature refused, not an attestation", r)
						}
						continue
					}
					if !strings.Contains(r.Message, "attestation provenance") || !strings.Contains(r.Found, tc.found) {
						t.Errorf("reason %+v; want it to name the requirement, and %q found", r, tc.found)
					}
					if tc.want == chartproofv1.ReasonPredicateRejected && !strings.Contains(r.Message, "workflow.ref") {
						t.Errorf("reason %q does not name the condition", r.Message)
					}
				}
			})
		}
	}
}

// TestGitHubProvenanceKeyless (issue 15): provenance as GitHub's
// attest-build-provenance pushes it — a keyless Sigstore bundle whose
// certificate names the workflow with GitHub's Fulcio extensions, an SLSA v1
// predicate of GitHub's build type — found through the referrers API and
// through the fallback tag that lost its annotations; and the same
// provenance as cosign v2 `attest` writes it keyless, in the `.att` tag
// with the Rekor v1 bundle of its dsse entry. A policy requiring it
// from that workflow, its condition reading the predicate and the signer's
// certificate extensions, accepts it and reports the signer; the twin
// signed by another workflow's identity is refused with IdentityMismatch.
func TestGitHubProvenanceKeyless(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/example/charts/.github/workflows/release.yml@refs/heads/main"
		other    = "https://github.com/example/charts/.github/workflows/nightly.yml@refs/heads/main"
	)
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, discovery := range []struct {
		name         string
		referrersAPI bool
		legacy       bool // cosign v2's .att tag, a Rekor v1 entry
	}{{"referrers API", true, false}, {"fallback tag without annotations", false, false}, {"cosign v2 .att tag", true, true}} {
		for _, tc := range []struct {
			name, signer, want string
		}{{"release workflow", workflow, chartproofv1.ReasonVerified}, {"another workflow", other, chartproofv1.ReasonIdentityMismatch}} {
			t.Run(discovery.name+"/"+tc.name, func(t *testing.T) {
				reg := newRegistry(t, discovery.referrersAPI)
				release, _ := testsign.NewKey("p256")
				digest := pushChart(t, reg, "charts/hello", "1.0.0")
				if err := reg.SignLegacy("charts/hello", digest, digest, release); err != nil {
					t.Fatal(err)
				}
				stmt := testsign.AttestationStatement(slsaV1, githubProvenance("https://github.com/example/charts", goodRef, goodBuilder), reg.Host+"/charts/hello", digest)
				cert := testsign.Cert{URI: tc.signer, Issuer: issuer, Extensions: map[string]string{
					"sourceRepositoryURI": "https://github.com/example/charts", "sourceRepositoryRef": "refs/heads/main", "runnerEnvironment": "github-hosted",
				}}
				if discovery.legacy {
					layer, err := s.AttestLegacy(stmt, slsaV1, cert)
					if err != nil {
						t.Fatal(err)
					}
					if err := reg.AppendLegacyAttestationLayer("charts/hello", digest, layer); err != nil {
						t.Fatal(err)
					}
				} else {
					bundle, err := s.SignKeyless(stmt, testsign.KeylessOptions{Cert: cert})
					if err != nil {
						t.Fatal(err)
					}
					claimed := slsaV1
					if !discovery.referrersAPI {
						claimed = ""
					}
					if _, err := reg.AttachBundleAs("charts/hello", digest, bundle, claimed, !discovery.referrersAPI); err != nil {
						t.Fatal(err)
					}
				}
				p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
					Repositories: []string{reg.Host + "/charts/**"},
					Authorities:  []chartproofv1.Authority{{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: release.PublicPEM()}}},
					Attestations: []chartproofv1.AttestationRequirement{{
						Name: "provenance", PredicateType: slsaV1,
						Authorities: []chartproofv1.Authority{{Name: "github", Keyless: &chartproofv1.KeylessAuthority{
							TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Namespace: "infra", Name: "sigstore"}},
							Identities:  []chartproofv1.Identity{{Issuer: issuer, Subject: workflow}},
						}}},
						Condition: `predicate.buildDefinition.externalParameters.workflow.ref == "refs/heads/main" &&
signer.extensions.runnerEnvironment == "github-hosted" && signer.subject.startsWith("https://github.com/example/charts/")`,
					}},
				}, configMaps{"infra/sigstore/trusted_root.json": rootJSON})
				if err != nil {
					t.Fatal(err)
				}
				v, err := verify.ForPolicy(p)
				if err != nil {
					t.Fatal(err)
				}
				res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
					URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
				})
				if res.Verdict.Code() != tc.want {
					t.Fatalf("%s %+v; want %s", res.Verdict.Code(), res.Verdict.Reasons, tc.want)
				}
				if tc.want != chartproofv1.ReasonVerified {
					if !strings.Contains(res.Verdict.Reasons[0].Message, "attestation provenance") {
						t.Errorf("reason %q does not name the requirement", res.Verdict.Reasons[0].Message)
					}
					return
				}
				h := res.Verdict.Attestations[0]
				if h.Authority != "provenance/github" || h.Identity == nil || h.Identity.Subject != workflow || h.Log == nil {
					t.Errorf("held %+v; want provenance by provenance/github, signer %s, its log entry", h, workflow)
				}
			})
		}
	}
}

// chartLayer returns the digest of the chart layer of the manifest at
// digest.
func chartLayer(t *testing.T, reg testsign.Registry, repo, digest string) string {
	t.Helper()
	raw, err := reg.RawManifest(repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType == "application/vnd.cncf.helm.chart.content.v1.tar+gzip" {
			return l.Digest
		}
	}
	t.Fatalf("no chart layer in %s", raw)
	return ""
}
