package controllers_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// docClaim is what the docs say an example policy accepts: the certificates
// (one per authority the threshold needs) that the CI system or signer the
// example is written for would get, or, for a key policy, a key.
type docClaim struct {
	// attestations are, by requirement name, the predicate (JSON) the doc
	// says its condition accepts; each is signed keylessly by certs[0].
	attestations map[string]string
	certs        []testsign.Cert
	key          bool
	// tabled is true when the doc shows these certificate values in a
	// table next to the example: each value must then appear in the doc,
	// in backquotes, so the table and this claim cannot drift apart.
	tabled bool
}

const (
	githubIssuer   = "https://token.actions.githubusercontent.com"
	githubWorkflow = "https://github.com/ORG/REPO/.github/workflows/release.yaml@refs/tags/v1.2.3"
	gitlabPipeline = "https://gitlab.com/GROUP/PROJECT//.gitlab-ci.yml@refs/heads/main"
)

// docClaims are keyed by "file#kind/name". Every policy example of the docs
// needs one, and every claim needs its example.
var docClaims = map[string]docClaim{
	// A GitHub Actions workflow release.yaml of ORG/REPO, run on tag v1.2.3
	// on GitHub's runners: the certificate of the table of
	// docs/policy-keyless.md.
	"docs/policy-keyless.md#ClusterTrustPolicy/org-repo-releases": {tabled: true, certs: []testsign.Cert{{
		URI: githubWorkflow, Issuer: githubIssuer,
		Extensions: map[string]string{
			"sourceRepositoryURI":   "https://github.com/ORG/REPO",
			"sourceRepositoryRef":   "refs/tags/v1.2.3",
			"buildSignerURI":        githubWorkflow,
			"githubWorkflowTrigger": "push",
			"buildTrigger":          "push",
			"runnerEnvironment":     "github-hosted",
		},
	}}},
	// The main-branch pipeline of GROUP/PROJECT on gitlab.com, on
	// GitLab's runners.
	"docs/policy-keyless.md#TrustPolicy/gitlab-main": {tabled: true, certs: []testsign.Cert{{
		URI: gitlabPipeline, Issuer: "https://gitlab.com",
		Extensions: map[string]string{
			"sourceRepositoryURI": "https://gitlab.com/GROUP/PROJECT",
			"sourceRepositoryRef": "refs/heads/main",
			"buildSignerURI":      gitlabPipeline,
			"runnerEnvironment":   "gitlab-hosted",
		},
	}}},
	// Threshold 2: a platform pipeline and the security approver.
	"docs/policy-keyless.md#ClusterTrustPolicy/internal-sigstore": {certs: []testsign.Cert{
		{URI: "https://git.internal.example/platform/payments-api//.ci.yml@refs/heads/main", Issuer: "https://oidc.internal.example"},
		{Email: "security-approver@internal.example", Issuer: "https://oidc.internal.example"},
	}},
	"docs/policy-provenance.md#TrustPolicy/payments": {certs: []testsign.Cert{{
		URI: "https://github.com/example/charts/.github/workflows/release.yml@refs/heads/main", Issuer: githubIssuer,
	}}, attestations: map[string]string{"provenance": githubProvenanceExample}},
	"docs/policy-provenance.md#TrustPolicy/payments-gitlab": {certs: []testsign.Cert{{
		URI: "https://gitlab.com/example/charts//.gitlab-ci.yml@refs/heads/main", Issuer: "https://gitlab.com",
	}}, attestations: map[string]string{"provenance": `{"buildDefinition":{"buildType":"https://gitlab.com/gitlab-org/gitlab-runner/-/blob/v17.6.0/PROVENANCE.md",` +
		`"externalParameters":{"source":"https://gitlab.com/example/charts","entryPoint":"release-chart","variables":{"CI_COMMIT_REF_PROTECTED":"true","CI_JOB_TOKEN":"[MASKED]"}},` +
		`"internalParameters":{"name":"runner-1","executor":"docker","architecture":"amd64","job":"42"}},"runDetails":{"builder":{"id":"https://gitlab.com/example/charts/-/runners/1"}}}`}},
	"docs/policy-provenance.md#TrustPolicy/payments-sbom": {certs: []testsign.Cert{{
		URI: "https://github.com/example/charts/.github/workflows/release.yml@refs/heads/main", Issuer: githubIssuer,
	}}, attestations: map[string]string{
		"provenance": githubProvenanceExample,
		"sbom":       `{"spdxVersion":"SPDX-2.3","creationInfo":{"comment":"https://github.com/example/charts/actions/runs/1/attempts/1"}}`,
	}},
	"config/samples/trustpolicy.yaml#TrustPolicy/team-charts": {key: true},
	// A release key whose signatures must be in the log of the private
	// Sigstore's trusted root.
	"docs/policy-keyless.md#TrustPolicy/logged-release-key": {key: true},
}

// docExample is one TrustPolicy or ClusterTrustPolicy of a doc.
// githubProvenanceExample is SLSA v1 provenance as GitHub's
// attest-build-provenance writes it, for the workflow docs/policy-provenance.md
// trusts.
const githubProvenanceExample = `{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1",` +
	`"externalParameters":{"workflow":{"ref":"refs/heads/main","repository":"https://github.com/example/charts","path":".github/workflows/release.yml"}},` +
	`"internalParameters":{"github":{"event_name":"push"}},"resolvedDependencies":[]},` +
	`"runDetails":{"builder":{"id":"https://github.com/actions/runner/github-hosted"},"metadata":{"invocationId":"https://github.com/example/charts/actions/runs/1/attempts/1"}}}`

type docExample struct {
	file string // relative to the repository root
	kind string
	obj  chartproofv1.TrustPolicy // the two kinds share metadata and spec
}

func (e docExample) id() string { return e.file + "#" + e.kind + "/" + e.obj.Name }

// TestDocsExamples applies every TrustPolicy and ClusterTrustPolicy of the
// docs (the ```yaml blocks of docs/*.md and README.md, read from the
// markdown itself so doc and test cannot drift) and of config/samples to
// the test API server, compiles what the API server stored with
// policy.Compile, and evaluates it with internal/verify and internal/policy
// against signatures from a throwaway Sigstore:
//
//   - the certificates the docs say the example is written for (docClaims)
//     are allowed, as many as the threshold needs;
//   - the same certificates with another subject are refused with
//     IdentityMismatch;
//   - with another runnerEnvironment, where the example pins it, likewise.
//
// Examples that rely on the embedded public-good root (no trustedRoot) are
// evaluated against the throwaway Sigstore instead: after the API server has
// accepted the example as written, the compiled copy gets a trustedRoot
// naming a ConfigMap that holds the throwaway Sigstore's trusted root. Only
// the trust material changes; repositories, identities and threshold are
// the doc's. Examples that name a trustedRoot read the throwaway root from
// the ConfigMap or Secret they name. A key policy (config/samples) is
// checked with a key it reads from its Secret, and another key.
func TestDocsExamples(t *testing.T) {
	examples := docExamples(t)
	perFile := map[string]int{}
	seen := map[string]bool{}
	for _, e := range examples {
		perFile[e.file]++
		seen[e.id()] = true
	}
	if perFile["docs/policy-keyless.md"] < 3 {
		t.Fatalf("found %d policy examples in docs/policy-keyless.md, want at least 3: is the markdown parser broken?", perFile["docs/policy-keyless.md"])
	}
	for id := range docClaims {
		if !seen[id] {
			t.Errorf("docClaims names %s, which no doc holds any more", id)
		}
	}
	sigstore, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := sigstore.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		t.Run(e.id(), func(t *testing.T) {
			claim, ok := docClaims[e.id()]
			if !ok {
				t.Fatalf("no docClaims entry for %s: add the certificate (or key) the doc says it accepts", e.id())
			}
			if claim.tabled {
				checkTabled(t, e.file, claim.certs)
			}
			stored, ref := applyExample(t, e)
			key, err := testsign.NewKey("p256")
			if err != nil {
				t.Fatal(err)
			}
			spec := substitutePublicGood(stored.Spec, ref)
			read := objectReader{pem: []byte(key.PublicPEM()), root: rootJSON}
			p, err := policy.Compile(ref, spec, read)
			if err != nil {
				t.Fatalf("policy.Compile refuses what the API server accepted: %v", err)
			}
			v, err := verify.ForPolicy(p)
			if err != nil {
				t.Fatal(err)
			}
			repo := instantiate(p.Repositories[0])
			if !p.Covers(repo) {
				t.Fatalf("%s is not covered by %v", repo, p.Repositories)
			}
			sum := sha256.Sum256([]byte(e.id()))
			digest := "sha256:" + hex.EncodeToString(sum[:])
			statement := testsign.Statement(repo, digest)

			// evaluateWith judges the bundles as the chart's signatures,
			// with the attestations of preds (by requirement name).
			var evaluateWith func(t *testing.T, preds map[string]string, bundles ...[]byte) policy.Verdict
			evaluate := func(t *testing.T, bundles ...[]byte) policy.Verdict {
				t.Helper()
				return evaluateWith(t, claim.attestations, bundles...)
			}
			evaluateWith = func(t *testing.T, preds map[string]string, bundles ...[]byte) policy.Verdict {
				t.Helper()
				ev := policy.Evidence{Repository: repo, Digest: digest}
				for _, b := range bundles {
					sig, isSig := v.Bundle(b)
					if !isSig {
						t.Fatal("the bundle is not a signature")
					}
					sig.Layout = policy.LayoutSigstoreBundle
					ev.Signatures = append(ev.Signatures, sig)
				}
				// The attestations the doc's conditions accept, signed by
				// the first claimed signer.
				for _, a := range p.Attestations {
					pred, ok := preds[a.Name]
					if !ok {
						t.Fatalf("no docClaims attestation for requirement %s", a.Name)
					}
					b, err := sigstore.SignKeyless(testsign.AttestationStatement(a.PredicateType, pred, repo, digest), testsign.KeylessOptions{Cert: claim.certs[0]})
					if err != nil {
						t.Fatal(err)
					}
					att, ok := v.Attestation(b, a.Set())
					if !ok {
						t.Fatalf("requirement %s: not an attestation", a.Name)
					}
					ev.Attestations = append(ev.Attestations, att)
				}
				return policy.Evaluate(p, ev)
			}
			if claim.key {
				other, err := testsign.NewKey("p256")
				if err != nil {
					t.Fatal(err)
				}
				logged := p.Authorities[0].Log != nil // requireTransparencyLog
				for _, tc := range []struct {
					name string
					k    *testsign.Key
					log  bool
					want string
				}{
					{"the Secret's key", key, logged, ""},
					{"another key", other, logged, chartproofv1.ReasonUntrustedSigner},
					{"the Secret's key, not logged", key, false, map[bool]string{true: chartproofv1.ReasonNotLogged, false: ""}[logged]},
				} {
					t.Run(tc.name, func(t *testing.T) {
						b, err := testsign.Bundle(statement, tc.k)
						if tc.log {
							b, err = sigstore.SignKeyedLogged(statement, tc.k, testsign.KeyedLogOptions{})
						}
						if err != nil {
							t.Fatal(err)
						}
						checkVerdict(t, evaluate(t, b), tc.want, p.Threshold)
					})
				}
				return
			}
			sign := func(t *testing.T, mut func(*testsign.Cert)) [][]byte {
				t.Helper()
				var out [][]byte
				for _, c := range claim.certs {
					c.Extensions = copyMap(c.Extensions)
					mut(&c)
					b, err := sigstore.SignKeyless(statement, testsign.KeylessOptions{Cert: c})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, b)
				}
				return out
			}
			if len(claim.certs) != p.Threshold {
				t.Fatalf("docClaims has %d certificates, the example's threshold is %d", len(claim.certs), p.Threshold)
			}
			t.Run("claimed certificates", func(t *testing.T) {
				checkVerdict(t, evaluate(t, sign(t, func(*testsign.Cert) {})...), "", p.Threshold)
			})
			if len(claim.attestations) > 0 {
				// Each condition is what decides: a predicate it does not
				// accept (another builder, another ref: none of its fields)
				// is refused, the requirement named.
				for name := range claim.attestations {
					t.Run("attestation "+name+" of another build", func(t *testing.T) {
						preds := copyMap(claim.attestations)
						preds[name] = `{"buildDefinition":{},"runDetails":{}}`
						v := evaluateWith(t, preds, sign(t, func(*testsign.Cert) {})...)
						checkVerdict(t, v, chartproofv1.ReasonPredicateRejected, p.Threshold)
						if !strings.Contains(v.Message(), "attestation "+name) {
							t.Errorf("reason %q does not name the requirement", v.Message())
						}
					})
				}
			}
			t.Run("another subject", func(t *testing.T) {
				checkVerdict(t, evaluate(t, sign(t, func(c *testsign.Cert) {
					if c.URI != "" {
						c.URI = "https://git.example.com/someone/else//.ci.yml@refs/heads/main"
					} else {
						c.Email = "someone-else@example.com"
					}
				})...), chartproofv1.ReasonIdentityMismatch, p.Threshold)
			})
			pinsRunner := false
			for _, c := range claim.certs {
				_, has := c.Extensions["runnerEnvironment"]
				pinsRunner = pinsRunner || has
			}
			if pinsRunner {
				t.Run("self-hosted runner", func(t *testing.T) {
					checkVerdict(t, evaluate(t, sign(t, func(c *testsign.Cert) {
						if _, ok := c.Extensions["runnerEnvironment"]; ok {
							c.Extensions["runnerEnvironment"] = "self-hosted"
						}
					})...), chartproofv1.ReasonIdentityMismatch, p.Threshold)
				})
			}
		})
	}
}

func checkVerdict(t *testing.T, v policy.Verdict, wantCode string, threshold int) {
	t.Helper()
	if wantCode == "" {
		if !v.Passed() || len(v.Accepted) != threshold {
			t.Fatalf("got %s (%s) accepting %d, want allowed by %d authorities", v.Code(), v.Message(), len(v.Accepted), threshold)
		}
		return
	}
	if v.Allowed() || v.Code() != wantCode {
		t.Fatalf("got allowed=%v %s (%s), want refused with %s", v.Allowed(), v.Code(), v.Message(), wantCode)
	}
}

// checkTabled fails when a claimed certificate value is not in the doc, in
// backquotes, as its table shows it.
func checkTabled(t *testing.T, file string, certs []testsign.Cert) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		values := []string{c.Issuer, c.URI + c.Email}
		for _, v := range c.Extensions {
			values = append(values, v)
		}
		for _, v := range values {
			if !bytes.Contains(doc, []byte("`"+v+"`")) {
				t.Errorf("the claimed certificate value %q is not in %s: update the doc's table or docClaims", v, file)
			}
		}
	}
}

// applyExample creates the example in the test API server: a TrustPolicy in
// a fresh namespace, a ClusterTrustPolicy under a unique name. It returns
// what the API server stored (with its defaults) and its policy.Ref.
func applyExample(t *testing.T, e docExample) (chartproofv1.TrustPolicy, policy.Ref) {
	t.Helper()
	ns := newNamespace(t)
	var obj client.Object
	switch e.kind {
	case "TrustPolicy":
		tp := e.obj.DeepCopy()
		tp.Namespace = ns
		obj = tp
	default:
		obj = &chartproofv1.ClusterTrustPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: e.obj.Name + "-" + ns, Labels: e.obj.Labels, Annotations: e.obj.Annotations},
			Spec:       *e.obj.Spec.DeepCopy(),
		}
	}
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("the API server refuses the example: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	switch o := obj.(type) {
	case *chartproofv1.TrustPolicy:
		return *o, policy.Ref{Kind: "TrustPolicy", Namespace: o.Namespace, Name: o.Name}
	case *chartproofv1.ClusterTrustPolicy:
		return chartproofv1.TrustPolicy{ObjectMeta: o.ObjectMeta, Spec: o.Spec}, policy.Ref{Kind: "ClusterTrustPolicy", Name: o.Name}
	}
	panic("unreachable")
}

// substitutePublicGood gives every keyless authority without a trustedRoot
// (the embedded public-good root) a ConfigMap reference instead, which
// objectReader answers with the throwaway Sigstore's root.
func substitutePublicGood(spec chartproofv1.TrustPolicySpec, ref policy.Ref) chartproofv1.TrustPolicySpec {
	out := *spec.DeepCopy()
	auths := []*chartproofv1.Authority{}
	for i := range out.Authorities {
		auths = append(auths, &out.Authorities[i])
	}
	for i := range out.Attestations {
		for j := range out.Attestations[i].Authorities {
			auths = append(auths, &out.Attestations[i].Authorities[j])
		}
	}
	for _, a := range auths {
		k := a.Keyless
		if k == nil || k.TrustedRoot != nil {
			continue
		}
		cm := &chartproofv1.TrustedRootKeyReference{Name: "throwaway-sigstore", Key: policy.DefaultTrustedRootKey}
		if ref.Kind == "ClusterTrustPolicy" {
			cm.Namespace = "chartproof-system"
		}
		k.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: cm}
	}
	return out
}

// instantiate turns a repository glob into a repository it covers.
func instantiate(glob string) string {
	return strings.ReplaceAll(strings.ReplaceAll(glob, "**", "hello"), "*", "hello")
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// docExamples reads the TrustPolicies and ClusterTrustPolicies of the docs:
// the ```yaml blocks of docs/*.md and README.md, and config/samples/*.yaml.
// Other kinds are skipped; a policy that does not decode strictly fails.
func docExamples(t *testing.T) []docExample {
	t.Helper()
	var out []docExample
	md, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	md = append(md, filepath.Join("..", "README.md"))
	for _, path := range md {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range yamlBlocks(string(data)) {
			out = append(out, policyDocs(t, rel(path), b)...)
		}
	}
	samples, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range samples {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, policyDocs(t, rel(path), string(data))...)
	}
	return out
}

func rel(path string) string {
	return filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
}

// yamlBlocks returns the contents of the fenced ```yaml blocks of markdown.
func yamlBlocks(markdown string) []string {
	var (
		out   []string
		block []string
		in    bool
	)
	for _, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && (trimmed == "```yaml" || trimmed == "```yml"):
			in, block = true, nil
		case in && trimmed == "```":
			in = false
			out = append(out, strings.Join(block, "\n"))
		case in:
			block = append(block, line)
		}
	}
	return out
}

// policyDocs decodes the TrustPolicies and ClusterTrustPolicies among the
// YAML documents of text.
func policyDocs(t *testing.T, file, text string) []docExample {
	t.Helper()
	var out []docExample
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v\n%s", file, err, doc)
		}
		if meta.APIVersion != chartproofv1.GroupVersion.String() || (meta.Kind != "TrustPolicy" && meta.Kind != "ClusterTrustPolicy") {
			continue
		}
		// Strictly, as the API server decodes: case-sensitive field names,
		// no unknown or duplicate fields.
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var tp chartproofv1.TrustPolicy
		strictErrs, err := kjson.UnmarshalStrict(j, &tp)
		if err = errors.Join(append(strictErrs, err)...); err != nil {
			t.Fatalf("%s: %s %s: %v", file, meta.Kind, tp.Name, err)
		}
		out = append(out, docExample{file: file, kind: meta.Kind, obj: tp})
	}
}
