package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cli"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/")

// Policy files. {{REGISTRY}} is the test registry's host:port; a line
// holding only {{PEM}} is the key's PEM, indented as the placeholder is;
// {{PEM64}} is the PEM in base64, as a Secret's data holds it.
const (
	// clusterInline trusts one inline key for REGISTRY/charts/**.
	clusterInline = `apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: ci-charts
spec:
  repositories:
  - {{REGISTRY}}/charts/**
  authorities:
  - name: release-ci
    key:
      publicKey: |
        {{PEM}}
`
	// clusterSecretRef takes its key from clusterSecret, in the namespace
	// its secretRef names.
	clusterSecretRef = `apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: platform-charts
spec:
  repositories:
  - {{REGISTRY}}/charts/hello
  authorities:
  - name: release-ci
    key:
      secretRef:
        name: release-ci-key
        namespace: chartproof-system
`
	clusterSecret = `apiVersion: v1
kind: Secret
metadata:
  name: release-ci-key
  namespace: chartproof-system
stringData:
  cosign.pub: |
    {{PEM}}
`
	// teamSecretRef is a namespaced policy whose Secret, teamSecret, is in
	// its namespace.
	teamSecretRef = `apiVersion: delivery.chartproof.dev/v1alpha1
kind: TrustPolicy
metadata:
  name: team-charts
  namespace: team-a
spec:
  repositories:
  - {{REGISTRY}}/charts/*
  authorities:
  - name: release-ci
    key:
      secretRef:
        name: release-ci-key
`
	teamSecret = `apiVersion: v1
kind: Secret
metadata:
  name: release-ci-key
  namespace: team-a
stringData:
  cosign.pub: |
    {{PEM}}
`
	// defaultNamespaceData is a TrustPolicy and its Secret without a
	// namespace (both "default"), the Secret first, the key base64 in
	// data under a key of its own name.
	defaultNamespaceData = `apiVersion: v1
kind: Secret
metadata:
  name: signing-key
type: Opaque
data:
  key.pem: {{PEM64}}
---
apiVersion: delivery.chartproof.dev/v1alpha1
kind: TrustPolicy
metadata:
  name: team-charts
spec:
  repositories:
  - {{REGISTRY}}/charts/hello
  authorities:
  - name: release-ci
    key:
      secretRef:
        name: signing-key
        key: key.pem
`
)

// The policy clusterInline names in every verdict.
const ciCharts = "ClusterTrustPolicy ci-charts"

// world is one registry on loopback, a key the policies trust and one they
// do not, and what the test pushed, so that output can be normalized.
type world struct {
	reg    testsign.Registry
	signer *testsign.Key // the key the policy trusts
	other  *testsign.Key // a key no policy trusts
	keyIDs []string
	charts map[string]bool // chart manifest digests: stable, kept in golden files
}

type worldOptions struct {
	noReferrersAPI bool
	// wrap wraps the registry's handler (authentication).
	wrap func(http.Handler) http.Handler
	// push are the options testsign pushes with (credentials).
	push []remote.Option
}

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	ropts := []registry.Option{registry.Logger(log.New(io.Discard, "", 0))}
	if !opts.noReferrersAPI {
		ropts = append(ropts, registry.WithReferrersSupport(true))
	}
	var h http.Handler = registry.New(ropts...)
	if opts.wrap != nil {
		h = opts.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	w := &world{
		reg:    testsign.Registry{Host: strings.TrimPrefix(srv.URL, "http://"), Options: opts.push},
		charts: map[string]bool{},
	}
	w.signer = w.newKey(t, "p256")
	w.other = w.newKey(t, "p256")
	return w
}

func (w *world) newKey(t *testing.T, kind string) *testsign.Key {
	t.Helper()
	k, err := testsign.NewKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	if _, id, err := policy.ParsePublicKey([]byte(k.PublicPEM())); err == nil { // rsa1024 has no ID: it is refused
		w.keyIDs = append(w.keyIDs, id)
	}
	return k
}

// push pushes archive to repo under tag and returns its digest.
func (w *world) push(t *testing.T, repo, tag string, archive []byte) string {
	t.Helper()
	d, err := w.reg.PushChart(repo, tag, archive, "hello", tag)
	if err != nil {
		t.Fatal(err)
	}
	w.charts[d] = true
	return d
}

// pushHello pushes the hello chart at version, tagged version.
func (w *world) pushHello(t *testing.T, repo, version string) string {
	t.Helper()
	archive, err := testchart.Archive("hello", version)
	if err != nil {
		t.Fatal(err)
	}
	return w.push(t, repo, version, archive)
}

// signLegacy signs digest in cosign's legacy layout with a payload naming
// payloadDigest.
func (w *world) signLegacy(t *testing.T, repo, digest, payloadDigest string, k *testsign.Key) {
	t.Helper()
	if err := w.reg.SignLegacy(repo, digest, payloadDigest, k); err != nil {
		t.Fatal(err)
	}
}

// signBundle attaches a Sigstore bundle to digest whose statement names
// subjectDigest, as a referrer (listed by the referrers API, or by the
// fallback tag when fallbackTag is set).
func (w *world) signBundle(t *testing.T, repo, digest, subjectDigest string, k *testsign.Key, fallbackTag bool) {
	t.Helper()
	b, err := testsign.Bundle(testsign.Statement(w.reg.Host+"/"+repo, subjectDigest), k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.reg.AttachBundle(repo, digest, b, fallbackTag); err != nil {
		t.Fatal(err)
	}
}

// signedHello pushes hello 1.0.0 to charts/hello, signs it with the trusted
// key and returns its digest.
func (w *world) signedHello(t *testing.T) string {
	t.Helper()
	d := w.pushHello(t, "charts/hello", "1.0.0")
	w.signLegacy(t, "charts/hello", d, d, w.signer)
	return d
}

// ref is the CLI reference of repo at tag, or at digest when version is
// one.
func (w *world) ref(repo, version string) string {
	if strings.HasPrefix(version, "sha256:") {
		return "oci://" + w.reg.Host + "/" + repo + "@" + version
	}
	return "oci://" + w.reg.Host + "/" + repo + ":" + version
}

var pemPlaceholder = regexp.MustCompile(`(?m)^( *)\{\{PEM\}\}$`)

// render fills the placeholders of a policy template with the registry's
// address and k's public key.
func (w *world) render(tmpl string, k *testsign.Key) string {
	pemText := k.PublicPEM()
	s := strings.ReplaceAll(tmpl, "{{REGISTRY}}", w.reg.Host)
	s = strings.ReplaceAll(s, "{{PEM64}}", base64.StdEncoding.EncodeToString([]byte(pemText)))
	return pemPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		indent := m[:len(m)-len(strings.TrimLeft(m, " "))]
		lines := strings.Split(strings.TrimSuffix(pemText, "\n"), "\n")
		return indent + strings.Join(lines, "\n"+indent)
	})
}

// policyFile renders tmpl with k and writes it to a file of its own.
func (w *world) policyFile(t *testing.T, tmpl string, k *testsign.Key) string {
	t.Helper()
	return writeFile(t, w.render(tmpl, k))
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var sha256Digest = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// scrub replaces what changes from run to run: the registry's address
// (REGISTRY), key IDs in full and short (KEYID), and every digest that is
// not a chart's — signature manifests hold random signatures — (SIGDIGEST).
// Chart digests are kept: testchart archives are deterministic.
func (w *world) scrub(s string) string {
	s = strings.ReplaceAll(s, w.reg.Host, "REGISTRY")
	for _, id := range w.keyIDs {
		s = strings.ReplaceAll(s, id, "KEYID")
		s = strings.ReplaceAll(s, id[:16], "KEYID")
	}
	return sha256Digest.ReplaceAllStringFunc(s, func(d string) string {
		if w.charts[d] {
			return d
		}
		return "SIGDIGEST"
	})
}

type result struct {
	code           int
	stdout, stderr string
}

// verify runs `chartproof verify args...` with an empty keychain, so the
// host's Docker config is never read.
func verify(t *testing.T, args ...string) result {
	t.Helper()
	return verifyWith(t, authn.NewMultiKeychain(), args...)
}

func verifyWith(t *testing.T, kc authn.Keychain, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Verify(t.Context(), cli.Env{Stdout: &stdout, Stderr: &stderr, Keychain: kc, Timeout: time.Minute}, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// parseOutput decodes the JSON of --output json strictly: exactly one
// document, no field Output does not have.
func parseOutput(t *testing.T, s string) cli.Output {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var out cli.Output
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("--output json: %v\n%s", err, s)
	}
	if dec.More() {
		t.Fatalf("--output json: more than one document:\n%s", s)
	}
	return out
}

func reasonCodes(out cli.Output) []string {
	codes := []string{}
	for _, r := range out.Reasons {
		codes = append(codes, r.Code)
	}
	return codes
}

// checkGolden compares got with testdata/golden/name byte for byte, or
// rewrites the file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update writes it)", err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("output differs from %s (-got +want; go test ./internal/cli -update rewrites it):\n%s", path, diff)
	}
}

// verdict is what a run must decide, checked on the JSON output.
type verdict struct {
	code         int
	allowed      bool
	passed       bool
	inconclusive bool
	digest       string
	policy       string
	reasons      []string
}

func (v verdict) check(t *testing.T, text, jsonRun result) cli.Output {
	t.Helper()
	if text.code != v.code || jsonRun.code != v.code {
		t.Errorf("exit code: got %d (text), %d (json), want %d\ntext stdout:\n%s\nstderr:\n%s%s", text.code, jsonRun.code, v.code, text.stdout, text.stderr, jsonRun.stderr)
	}
	if text.stderr != "" || jsonRun.stderr != "" {
		t.Errorf("stderr: got %q, %q, want nothing: a verdict goes to stdout", text.stderr, jsonRun.stderr)
	}
	out := parseOutput(t, jsonRun.stdout)
	got := verdict{
		code: jsonRun.code, allowed: out.Allowed, passed: out.Passed, inconclusive: out.Inconclusive,
		digest: out.Digest, policy: out.Policy, reasons: reasonCodes(out),
	}
	want := v
	if want.reasons == nil {
		want.reasons = []string{}
	}
	if diff := cmp.Diff(got, want, cmp.AllowUnexported(verdict{})); diff != "" {
		t.Errorf("verdict (-got +want):\n%s\noutput:\n%s", diff, jsonRun.stdout)
	}
	return out
}

// TestVerifyAllowed: a chart signed by the trusted key, in either layout,
// by tag or by digest, exits 0 and says who signed it.
func TestVerifyAllowed(t *testing.T) {
	tests := []struct {
		name           string
		golden         string
		noReferrersAPI bool
		// sign signs digest in charts/hello and returns the version to ask for.
		sign       func(t *testing.T, w *world, digest string) string
		wantLayout policy.Layout
	}{
		{"legacy layout", "allowed-legacy", false, func(t *testing.T, w *world, d string) string {
			w.signLegacy(t, "charts/hello", d, d, w.signer)
			return "1.0.0"
		}, policy.LayoutCosignLegacy},
		{"bundle layout, referrers API", "allowed-bundle", false, func(t *testing.T, w *world, d string) string {
			w.signBundle(t, "charts/hello", d, d, w.signer, false)
			return "1.0.0"
		}, policy.LayoutSigstoreBundle},
		{"bundle layout, referrers fallback tag", "allowed-bundle-fallback-tag", true, func(t *testing.T, w *world, d string) string {
			w.signBundle(t, "charts/hello", d, d, w.signer, true)
			return "1.0.0"
		}, policy.LayoutSigstoreBundle},
		{"by digest", "allowed-digest", false, func(t *testing.T, w *world, d string) string {
			w.signLegacy(t, "charts/hello", d, d, w.signer)
			return d
		}, policy.LayoutCosignLegacy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{noReferrersAPI: tc.noReferrersAPI})
			digest := w.pushHello(t, "charts/hello", "1.0.0")
			ref := w.ref("charts/hello", tc.sign(t, w, digest))
			pol := w.policyFile(t, clusterInline, w.signer)

			text := verify(t, "--plain-http", "--policy", pol, ref)
			jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
			out := verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: digest, policy: ciCharts}.check(t, text, jsonRun)
			wantAccepted := []policy.Acceptance{{Authority: "release-ci", KeyID: w.keyIDs[0], Layout: tc.wantLayout}}
			if diff := cmp.Diff(out.Accepted, wantAccepted, cmp.Comparer(func(a, b policy.Acceptance) bool {
				a.Signature, b.Signature = "", "" // a signature manifest's digest changes per run
				return a == b
			})); diff != "" {
				t.Errorf("accepted (-got +want):\n%s", diff)
			}
			for _, a := range out.Accepted {
				if !policy.CanonicalDigest(a.Signature) {
					t.Errorf("accepted signature: got %q, want the digest of the signature's manifest", a.Signature)
				}
			}
			wantTag := "1.0.0"
			if strings.Contains(ref, "@") {
				wantTag = "" // asked for by digest
			}
			if out.Tag != wantTag || out.Repository != w.reg.Host+"/charts/hello" {
				t.Errorf("repository, tag: got %q, %q, want %q, %q", out.Repository, out.Tag, w.reg.Host+"/charts/hello", wantTag)
			}
			checkGolden(t, tc.golden+".txt", w.scrub(text.stdout))
			checkGolden(t, tc.golden+".json", w.scrub(jsonRun.stdout))
		})
	}
}

// TestVerifyDenials: each attack (or bad version) exits 1 with its reason
// code, beside its control twin — the same setup without the attack — which
// exits 0.
func TestVerifyDenials(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		// setup pushes and signs, with the attack or as its control twin,
		// and returns the reference to verify and the digest it resolves to
		// ("" when it is not resolved at all).
		setup    func(t *testing.T, w *world, attack bool) (ref, digest string)
		wantCode string
	}{
		{"unsigned", "no-signature", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			if !attack {
				w.signLegacy(t, "charts/hello", d, d, w.signer)
			}
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonNoSignature},

		{"signed with an untrusted key, legacy layout", "untrusted-signer", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			k := w.signer
			if attack {
				k = w.other
			}
			w.signLegacy(t, "charts/hello", d, d, k)
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonUntrustedSigner},

		{"signed with an untrusted key, bundle layout", "untrusted-signer-bundle", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			k := w.signer
			if attack {
				k = w.other
			}
			w.signBundle(t, "charts/hello", d, d, k, false)
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonUntrustedSigner},

		{"trusted signature copied from another digest, legacy layout", "subject-mismatch", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			named := d
			if attack {
				named = w.pushHello(t, "charts/hello", "2.0.0")
			}
			w.signLegacy(t, "charts/hello", d, named, w.signer)
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonSubjectMismatch},

		{"trusted statement naming another digest, bundle layout", "subject-mismatch-bundle", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			named := d
			if attack {
				named = w.pushHello(t, "charts/hello", "2.0.0")
			}
			w.signBundle(t, "charts/hello", d, named, w.signer, false)
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonSubjectMismatch},

		{"tag moved to an unsigned digest after signing", "tag-moved", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			w.signLegacy(t, "charts/hello", d, d, w.signer)
			if attack {
				files := testchart.Files("hello", "1.0.0")
				files["values.yaml"] = strings.Replace(files["values.yaml"], "message: hello", "message: pwned", 1)
				archive, err := testchart.Build(testchart.Entries("hello", files))
				if err != nil {
					t.Fatal(err)
				}
				d = w.push(t, "charts/hello", "1.0.0", archive)
			}
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonNoSignature},

		{"repository outside the policy", "no-policy-match", func(t *testing.T, w *world, attack bool) (string, string) {
			repo := "charts/hello"
			if attack {
				repo = "elsewhere/hello"
			}
			d := w.pushHello(t, repo, "1.0.0")
			w.signLegacy(t, repo, d, d, w.signer)
			if attack {
				return w.ref(repo, "1.0.0"), "" // out of scope: not even resolved
			}
			return w.ref(repo, "1.0.0"), d
		}, chartproofv1.ReasonNoPolicyMatch},

		{"tag that does not exist", "version-not-found", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			w.signLegacy(t, "charts/hello", d, d, w.signer)
			if attack {
				return w.ref("charts/hello", "1.0.1"), ""
			}
			return w.ref("charts/hello", "1.0.0"), d
		}, chartproofv1.ReasonVersionNotFound},

		{"digest that does not exist", "digest-not-found", func(t *testing.T, w *world, attack bool) (string, string) {
			d := w.pushHello(t, "charts/hello", "1.0.0")
			w.signLegacy(t, "charts/hello", d, d, w.signer)
			if attack {
				missing := "sha256:" + strings.Repeat("0", 64)
				w.charts[missing] = true // stable: keep it in the golden file
				return w.ref("charts/hello", missing), ""
			}
			return w.ref("charts/hello", d), d
		}, chartproofv1.ReasonVersionNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, attack := range []bool{false, true} {
				name := "control"
				if attack {
					name = "attack"
				}
				t.Run(name, func(t *testing.T) {
					w := newWorld(t, worldOptions{})
					ref, digest := tc.setup(t, w, attack)
					pol := w.policyFile(t, clusterInline, w.signer)
					text := verify(t, "--plain-http", "--policy", pol, ref)
					jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
					if !attack {
						verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: digest, policy: ciCharts}.check(t, text, jsonRun)
						return
					}
					out := verdict{code: cli.ExitDenied, digest: digest, policy: ciCharts, reasons: []string{tc.wantCode}}.check(t, text, jsonRun)
					if len(out.Accepted) != 0 {
						t.Errorf("accepted: got %+v, want none in a denial", out.Accepted)
					}
					if tc.wantCode == chartproofv1.ReasonNoSignature {
						if r := out.Reasons[0]; r.Expected == "" || r.Found == "" {
							t.Errorf("NoSignature: got expected %q, found %q, want both filled", r.Expected, r.Found)
						}
					}
					checkGolden(t, tc.golden+".txt", w.scrub(text.stdout))
					checkGolden(t, tc.golden+".json", w.scrub(jsonRun.stdout))
				})
			}
		})
	}
}

// TestVerifyRegistryDown: a registry nobody answers at is inconclusive —
// denied, exit 3 (not 1: CI tells an outage from a refusal by the status
// alone), and marked so in the JSON — unlike its control twin, the same
// chart on a registry that answers.
func TestVerifyRegistryDown(t *testing.T) {
	for _, down := range []bool{false, true} {
		name := "control: registry up"
		if down {
			name = "registry down"
		}
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			digest := w.signedHello(t)
			ref := w.ref("charts/hello", "1.0.0")
			host := w.reg.Host
			if down {
				srv := httptest.NewServer(nil)
				srv.Close() // nothing listens there any more
				host = strings.TrimPrefix(srv.URL, "http://")
				ref = strings.Replace(ref, w.reg.Host, host, 1)
			}
			pol := writeFile(t, strings.ReplaceAll(w.render(clusterInline, w.signer), w.reg.Host, host))
			text := verify(t, "--plain-http", "--policy", pol, ref)
			jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
			if !down {
				verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: digest, policy: ciCharts}.check(t, text, jsonRun)
				return
			}
			verdict{code: cli.ExitInconclusive, inconclusive: true, policy: ciCharts, reasons: []string{chartproofv1.ReasonRegistryUnavailable}}.check(t, text, jsonRun)
			if !strings.Contains(jsonRun.stdout, `"inconclusive": true`) {
				t.Errorf("json: got\n%s\nwant \"inconclusive\": true", jsonRun.stdout)
			}
			if first, _, _ := strings.Cut(text.stdout, "\n"); first != "DENIED (inconclusive) "+ref {
				t.Errorf("text: got first line %q, want %q", first, "DENIED (inconclusive) "+ref)
			}
		})
	}
}

// TestVerifyArguments: flags go before or after the reference, in either
// spelling; plain HTTP is an explicit opt-in with no fallback.
func TestVerifyArguments(t *testing.T) {
	tests := []struct {
		name         string
		args         func(pol, ref string) []string
		json         bool
		wantCode     int
		inconclusive bool
	}{
		{"flags before the reference", func(pol, ref string) []string {
			return []string{"--plain-http", "--policy", pol, ref}
		}, false, cli.ExitAllowed, false},
		{"flags after the reference", func(pol, ref string) []string {
			return []string{ref, "--policy", pol, "--output", "json", "--plain-http"}
		}, true, cli.ExitAllowed, false},
		{"flags around the reference, with =", func(pol, ref string) []string {
			return []string{"--policy=" + pol, ref, "--output=json", "--plain-http=true"}
		}, true, cli.ExitAllowed, false},
		{"without --plain-http: HTTPS only, no fallback", func(pol, ref string) []string {
			return []string{ref, "--policy", pol, "--output", "json"}
		}, true, cli.ExitInconclusive, true},
	}
	w := newWorld(t, worldOptions{})
	digest := w.signedHello(t)
	ref := w.ref("charts/hello", "1.0.0")
	pol := w.policyFile(t, clusterInline, w.signer)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, tc.args(pol, ref)...)
			if r.code != tc.wantCode {
				t.Fatalf("exit code: got %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			if !tc.json {
				if want := "ALLOWED oci://" + w.reg.Host + "/charts/hello@" + digest + "\n"; !strings.HasPrefix(r.stdout, want) {
					t.Errorf("text: got\n%s\nwant it to start with %q", r.stdout, want)
				}
				return
			}
			out := parseOutput(t, r.stdout)
			if out.Inconclusive != tc.inconclusive || out.Allowed != (tc.wantCode == cli.ExitAllowed) {
				t.Errorf("json: got allowed %v inconclusive %v, want %v %v\n%s", out.Allowed, out.Inconclusive, tc.wantCode == cli.ExitAllowed, tc.inconclusive, r.stdout)
			}
		})
	}
}

// TestVerifyPolicyFile: every shape of policy file works, and the key it
// holds is the one used: each file with another key in it refuses the same
// chart.
func TestVerifyPolicyFile(t *testing.T) {
	tests := []struct {
		name       string
		tmpl       string
		wantPolicy string
	}{
		{"ClusterTrustPolicy, inline key", clusterInline, ciCharts},
		{"ClusterTrustPolicy, Secret in the namespace its secretRef names", clusterSecretRef + "---\n" + clusterSecret, "ClusterTrustPolicy platform-charts"},
		{"ClusterTrustPolicy after its Secret", clusterSecret + "---\n" + clusterSecretRef, "ClusterTrustPolicy platform-charts"},
		{"TrustPolicy, Secret with stringData in its namespace", teamSecretRef + "---\n" + teamSecret, "TrustPolicy team-a/team-charts"},
		{"TrustPolicy without namespace, Secret with data", defaultNamespaceData, "TrustPolicy default/team-charts"},
		{"TrustPolicy, inline key, leading --- and comments", "# chartproof policy\n---\n" + strings.Replace(clusterInline, "kind: ClusterTrustPolicy", "kind: TrustPolicy", 1) + "---\n", "TrustPolicy default/ci-charts"},
	}
	w := newWorld(t, worldOptions{})
	digest := w.signedHello(t)
	ref := w.ref("charts/hello", "1.0.0")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := w.policyFile(t, tc.tmpl, w.signer)
			text := verify(t, "--plain-http", "--policy", pol, ref)
			jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
			verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: digest, policy: tc.wantPolicy}.check(t, text, jsonRun)

			pol = w.policyFile(t, tc.tmpl, w.other)
			text = verify(t, "--plain-http", "--policy", pol, ref)
			jsonRun = verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
			verdict{code: cli.ExitDenied, digest: digest, policy: tc.wantPolicy, reasons: []string{chartproofv1.ReasonUntrustedSigner}}.check(t, text, jsonRun)
		})
	}
}

// TestVerifyUsageErrors: bad arguments and bad policy files exit 2 with a
// message on stderr and nothing on stdout, and contact no registry; each
// beside its control twin, which exits 0.
func TestVerifyUsageErrors(t *testing.T) {
	w := newWorld(t, worldOptions{})
	digest := w.signedHello(t)
	rsa2048 := w.newKey(t, "rsa2048")
	rsa1024 := w.newKey(t, "rsa1024")
	w.signLegacy(t, "charts/hello", digest, digest, rsa2048)
	ref := w.ref("charts/hello", "1.0.0")

	type config struct {
		args   func(pol string) []string
		policy string // the policy file's content
	}
	args := func(a ...string) func(string) []string {
		return func(pol string) []string {
			out := make([]string, len(a))
			for i, s := range a {
				out[i] = strings.ReplaceAll(s, "POLICY", pol)
			}
			return out
		}
	}
	good := config{args("--plain-http", "--policy", "POLICY", ref), w.render(clusterInline, w.signer)}
	withArgs := func(a ...string) config { return config{args(a...), good.policy} }
	withPolicy := func(p string) config { return config{good.args, p} }
	clusterSecretFile := w.render(clusterSecretRef+"---\n"+clusterSecret, w.signer)
	teamSecretFile := w.render(teamSecretRef+"---\n"+teamSecret, w.signer)

	tests := []struct {
		name       string
		control    config
		attack     config
		wantStderr string
	}{
		{"no reference", good, withArgs("--plain-http", "--policy", "POLICY"),
			"want exactly one chart reference, got 0"},
		{"two references", good, withArgs("--plain-http", "--policy", "POLICY", ref, ref),
			"want exactly one chart reference, got 2"},
		{"missing --policy", good, withArgs("--plain-http", ref),
			"--policy is required"},
		{"empty --policy", good, withArgs("--plain-http", "--policy", "", ref),
			"--policy is required"},
		{"bad --output", withArgs("--plain-http", "--policy", "POLICY", "--output", "json", ref), withArgs("--plain-http", "--policy", "POLICY", "--output", "yaml", ref),
			`--output must be text or json, not "yaml"`},
		{"unknown flag", good, withArgs("--plain-http", "--insecure", "--policy", "POLICY", ref),
			"unknown flag: --insecure"},
		{"negative --timeout", withArgs("--plain-http", "--policy", "POLICY", "--timeout", "30s", ref), withArgs("--plain-http", "--policy", "POLICY", "--timeout", "-1s", ref),
			"--timeout must not be negative"},
		{"--timeout without a unit", withArgs("--plain-http", "--policy", "POLICY", "--timeout", "30s", ref), withArgs("--plain-http", "--policy", "POLICY", "--timeout", "30", ref),
			`invalid argument "30" for "--timeout"`},
		{"flag without its value", good, withArgs(ref, "--plain-http", "--policy"),
			"flag needs an argument: --policy"},
		{"reference without tag", good, withArgs("--plain-http", "--policy", "POLICY", strings.TrimSuffix(ref, ":1.0.0")),
			"has no :TAG or @sha256:DIGEST"},
		{"reference with an empty tag", good, withArgs("--plain-http", "--policy", "POLICY", strings.TrimSuffix(ref, "1.0.0")),
			"has no :TAG or @sha256:DIGEST"},
		{"reference without oci://", good, withArgs("--plain-http", "--policy", "POLICY", strings.TrimPrefix(ref, "oci://")),
			"must start with oci://"},
		{"reference with @ and no digest", withArgs("--plain-http", "--policy", "POLICY", w.ref("charts/hello", digest)), withArgs("--plain-http", "--policy", "POLICY", w.ref("charts/hello", "1.0.0")+"@"),
			"is not a sha256 digest"},
		{"reference with @ and a tag", withArgs("--plain-http", "--policy", "POLICY", w.ref("charts/hello", digest)), withArgs("--plain-http", "--policy", "POLICY", strings.Replace(ref, ":1.0.0", "@1.0.0", 1)),
			"is not a sha256 digest"},
		{"reference with both tag and digest", withArgs("--plain-http", "--policy", "POLICY", w.ref("charts/hello", digest)), withArgs("--plain-http", "--policy", "POLICY", ref+"@"+digest),
			"want a canonical repository"},
		{"reference in upper case", good, withArgs("--plain-http", "--policy", "POLICY", strings.Replace(ref, "charts/hello", "charts/Hello", 1)),
			"oci: invalid reference"},
		{"policy file missing", good, config{func(string) []string {
			return []string{"--plain-http", "--policy", filepath.Join(t.TempDir(), "missing.yaml"), ref}
		}, good.policy}, "policy file: open "},
		{"keyless identity accepting anyone (POL-01)", good, withPolicy(w.render("apiVersion: delivery.chartproof.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata:\n  name: anyone\nspec:\n  repositories:\n  - {{REGISTRY}}/charts/**\n  authorities:\n  - name: anyone\n    keyless:\n      identities:\n      - issuer: https://token.actions.githubusercontent.com\n        subjectRegExp: \".+\"\n", w.signer)),
			"accepts any issuer or signer"},
		{"keyless identity escaping its anchors (POL-01)", good, withPolicy(w.render("apiVersion: delivery.chartproof.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata:\n  name: anyone\nspec:\n  repositories:\n  - {{REGISTRY}}/charts/**\n  authorities:\n  - name: anyone\n    keyless:\n      identities:\n      - issuer: https://token.actions.githubusercontent.com\n        subjectRegExp: 'https://github\\.com/org/x)|(.*'\n", w.signer)),
			"unexpected )"},
		{"empty policy file", good, withPolicy("# nothing\n"),
			"policy file: no TrustPolicy or ClusterTrustPolicy"},
		{"policy with an unknown field", good, withPolicy(strings.Replace(good.policy, "  repositories:", "  requireTransparencyLog: true\n  repositories:", 1)),
			`unknown field "spec.requireTransparencyLog"`},
		{"policy with a misspelt field", good, withPolicy(strings.Replace(good.policy, "publicKey:", "publickey:", 1)),
			`unknown field "spec.authorities[0].key.publickey"`},
		{"a second policy document", good, withPolicy(good.policy + "---\n" + strings.Replace(good.policy, "name: ci-charts", "name: more-charts", 1)),
			"document 2: a second policy; the file must hold exactly one"},
		{"a document of another kind", good, withPolicy(good.policy + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: settings\n"),
			"document 2: v1 Service is neither"},
		{"a policy of another API version", good, withPolicy(strings.Replace(good.policy, "/v1alpha1", "/v1beta1", 1)),
			"document 1: delivery.chartproof.dev/v1beta1 ClusterTrustPolicy is neither"},
		{"a policy without a name", good, withPolicy(strings.Replace(good.policy, "  name: ci-charts\n", "  labels: {}\n", 1)),
			"ClusterTrustPolicy has no metadata.name"},
		{"secretRef to a Secret not in the file", withPolicy(clusterSecretFile), withPolicy(w.render(clusterSecretRef, w.signer)),
			"secret chartproof-system/release-ci-key is not in the policy file"},
		{"secretRef to a Secret in another namespace", withPolicy(clusterSecretFile), withPolicy(strings.Replace(clusterSecretFile, "namespace: chartproof-system\nstringData", "namespace: default\nstringData", 1)),
			"secret chartproof-system/release-ci-key is not in the policy file"},
		{"secretRef to a key the Secret lacks", withPolicy(clusterSecretFile), withPolicy(strings.Replace(clusterSecretFile, "cosign.pub:", "key.pem:", 1)),
			`secret chartproof-system/release-ci-key has no key "cosign.pub"`},
		{"ClusterTrustPolicy secretRef without namespace", withPolicy(clusterSecretFile), withPolicy(strings.Replace(clusterSecretFile, "        namespace: chartproof-system\n", "", 1)),
			`secretRef "release-ci-key" must name its namespace in a ClusterTrustPolicy`},
		{"TrustPolicy secretRef to another namespace", withPolicy(teamSecretFile), withPolicy(strings.Replace(teamSecretFile, "        name: release-ci-key\n", "        name: release-ci-key\n        namespace: kube-system\n", 1)),
			"secretRef kube-system/release-ci-key is outside the policy's namespace"},
		{"Secret with a misspelt field", withPolicy(clusterSecretFile), withPolicy(strings.Replace(clusterSecretFile, "stringData:", "stringdata:", 1)),
			`document 2 (Secret): unknown field "stringdata"`},
		{"a weak RSA-1024 key", withPolicy(w.render(clusterInline, rsa2048)), withPolicy(w.render(clusterInline, rsa1024)),
			"RSA key of 1024 bits is below 2048"},
		{"a key that is not PEM", good, withPolicy(strings.Replace(good.policy, "-----BEGIN PUBLIC KEY-----", "-----BEGIN PUBLIC KEY----", 1)),
			"public key: no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(c config) result {
				return verify(t, c.args(writeFile(t, c.policy))...)
			}
			if r := run(tc.control); r.code != cli.ExitAllowed {
				t.Fatalf("control: exit code: got %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, cli.ExitAllowed, r.stdout, r.stderr)
			}
			r := run(tc.attack)
			if r.code != cli.ExitUsage {
				t.Errorf("exit code: got %d, want %d", r.code, cli.ExitUsage)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Errorf("stderr: got\n%s\nwant it to contain %q", r.stderr, tc.wantStderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got\n%s\nwant nothing: no verdict without a usable command", r.stdout)
			}
		})
	}
}

// TestVerifyRegistryAuth: credentials come from Env.Keychain, for the
// registry's host only.
func TestVerifyRegistryAuth(t *testing.T) {
	const user, password = "reader", "s3cret"
	requireAuth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				rw.Header().Set("WWW-Authenticate", `Basic realm="chartproof-test"`)
				rw.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(rw, r)
		})
	}
	w := newWorld(t, worldOptions{
		wrap: requireAuth,
		push: []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: password})},
	})
	digest := w.signedHello(t)
	ref := w.ref("charts/hello", "1.0.0")
	pol := w.policyFile(t, clusterInline, w.signer)
	basic := func(host, u, p string) authn.Keychain {
		return hostKeychain{host: host, auth: &authn.Basic{Username: u, Password: p}}
	}

	tests := []struct {
		name     string
		keychain authn.Keychain
		allowed  bool
	}{
		{"right credentials", basic(w.reg.Host, user, password), true},
		{"wrong password", basic(w.reg.Host, user, "guess"), false},
		{"credentials for another host", basic("registry.example.com", user, password), false},
		{"no credentials", authn.NewMultiKeychain(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := verifyWith(t, tc.keychain, "--plain-http", "--policy", pol, ref)
			jsonRun := verifyWith(t, tc.keychain, "--plain-http", "--policy", pol, "--output", "json", ref)
			if tc.allowed {
				verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: digest, policy: ciCharts}.check(t, text, jsonRun)
				return
			}
			// A refused credential is a misconfiguration, not an outage:
			// RegistryUnauthorized, and not inconclusive.
			out := verdict{code: cli.ExitDenied, policy: ciCharts, reasons: []string{chartproofv1.ReasonRegistryUnauthorized}}.check(t, text, jsonRun)
			if msg := out.Reasons[0].Message; !strings.Contains(msg, "status 401") {
				t.Errorf("message: got %q, want it to say the registry answered 401", msg)
			}
		})
	}
}

// hostKeychain holds credentials for one registry host.
type hostKeychain struct {
	host string
	auth authn.Authenticator
}

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// TestVerifyAuditMode: under a policy in Audit mode an unsigned chart is
// allowed — exit 0 — and said to be unverified; its control twin, the same
// policy in Enforce mode, refuses it.
func TestVerifyAuditMode(t *testing.T) {
	for _, mode := range []chartproofv1.Mode{chartproofv1.ModeEnforce, chartproofv1.ModeAudit} {
		t.Run(string(mode), func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			digest := w.pushHello(t, "charts/hello", "1.0.0")
			pol := w.policyFile(t, clusterInline+"  mode: "+string(mode)+"\n", w.signer)
			ref := w.ref("charts/hello", "1.0.0")
			text := verify(t, "--plain-http", "--policy", pol, ref)
			jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
			if mode == chartproofv1.ModeEnforce {
				verdict{code: cli.ExitDenied, digest: digest, policy: ciCharts, reasons: []string{chartproofv1.ReasonNoSignature}}.check(t, text, jsonRun)
				return
			}
			out := verdict{code: cli.ExitAllowed, allowed: true, digest: digest, policy: ciCharts, reasons: []string{chartproofv1.ReasonNoSignature}}.check(t, text, jsonRun)
			if out.Mode != string(chartproofv1.ModeAudit) {
				t.Errorf("mode: got %q, want %q", out.Mode, chartproofv1.ModeAudit)
			}
			checkGolden(t, "audit-unsigned.txt", w.scrub(text.stdout))
			checkGolden(t, "audit-unsigned.json", w.scrub(jsonRun.stdout))
		})
	}
}

// TestVerifyHelp: --help prints the usage on stderr and exits 0, without
// verifying anything.
func TestVerifyHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"oci://127.0.0.1:1/charts/hello:1.0.0", "--policy", "missing.yaml", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := verify(t, args...)
			if r.code != cli.ExitAllowed || r.stdout != "" || !strings.HasPrefix(r.stderr, "Usage: chartproof verify") {
				t.Errorf("got exit code %d, stdout %q, stderr\n%s\nwant 0, nothing, the usage", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestVerifyContent: the CLI reads the chart by the verified digest and
// checks the archive, as the controller does before an install. Bytes
// changed under the same digest (DigestMismatch) and a signed archive that
// could not be installed safely (InvalidChart) are refused; each control
// twin, the same setup untouched, is allowed.
func TestVerifyContent(t *testing.T) {
	tests := []struct {
		name     string
		wantCode string
	}{
		{"bytes changed under the same digest", chartproofv1.ReasonDigestMismatch},
		{"signed archive with a symlink", chartproofv1.ReasonInvalidChart},
	}
	for _, tc := range tests {
		for _, attack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/attack=%v", tc.name, attack), func(t *testing.T) {
				var (
					mu     sync.Mutex
					served = map[string][]byte{} // URL path -> bytes served instead
				)
				w := newWorld(t, worldOptions{wrap: func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
						mu.Lock()
						body, ok := served[r.URL.Path]
						mu.Unlock()
						if ok && r.Method == http.MethodGet {
							rw.Write(body)
							return
						}
						h.ServeHTTP(rw, r)
					})
				}})
				archive, err := testchart.Archive("hello", "1.0.0")
				if err != nil {
					t.Fatal(err)
				}
				if attack && tc.wantCode == chartproofv1.ReasonInvalidChart {
					entries := testchart.Entries("hello", testchart.Files("hello", "1.0.0"))
					entries = append(entries, testchart.Entry{Name: "hello/templates/link.yaml", Typeflag: '2', Linkname: "/etc/passwd"})
					if archive, err = testchart.Build(entries); err != nil {
						t.Fatal(err)
					}
				}
				d := w.push(t, "charts/hello", "1.0.0", archive)
				w.signLegacy(t, "charts/hello", d, d, w.signer)
				if attack && tc.wantCode == chartproofv1.ReasonDigestMismatch {
					layer := sha256.Sum256(archive)
					evil := append([]byte{}, archive...)
					evil[len(evil)/2] ^= 0xff
					mu.Lock()
					served["/v2/charts/hello/blobs/sha256:"+hex.EncodeToString(layer[:])] = evil
					mu.Unlock()
				}
				pol := w.policyFile(t, clusterInline, w.signer)
				ref := w.ref("charts/hello", "1.0.0")
				text := verify(t, "--plain-http", "--policy", pol, ref)
				jsonRun := verify(t, "--plain-http", "--policy", pol, "--output", "json", ref)
				if !attack {
					out := verdict{code: cli.ExitAllowed, allowed: true, passed: true, digest: d, policy: ciCharts}.check(t, text, jsonRun)
					if out.Chart != "hello 1.0.0" {
						t.Errorf("chart: got %q, want %q", out.Chart, "hello 1.0.0")
					}
					return
				}
				verdict{code: cli.ExitDenied, digest: d, policy: ciCharts, reasons: []string{tc.wantCode}}.check(t, text, jsonRun)
			})
		}
	}
}

// TestVerifyDockerConfigFile: with no keychain given, credentials come from
// the Docker config file, as crane and cosign read it ($DOCKER_CONFIG).
// The control is the right password; the twin a wrong one.
func TestVerifyDockerConfigFile(t *testing.T) {
	const user, password = "reader", "s3cret"
	w := newWorld(t, worldOptions{
		wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
					rw.Header().Set("WWW-Authenticate", `Basic realm="chartproof-test"`)
					rw.WriteHeader(http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(rw, r)
			})
		},
		push: []remote.Option{remote.WithAuth(&authn.Basic{Username: user, Password: password})},
	})
	digest := w.signedHello(t)
	ref := w.ref("charts/hello", "1.0.0")
	pol := w.policyFile(t, clusterInline, w.signer)
	for _, tc := range []struct {
		name, password string
		allowed        bool
	}{{"right password", password, true}, {"wrong password", "guess", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + tc.password))
			cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, w.reg.Host, auth)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("DOCKER_CONFIG", dir)
			var stdout, stderr bytes.Buffer
			code := cli.Verify(t.Context(), cli.Env{Stdout: &stdout, Stderr: &stderr, Timeout: time.Minute},
				[]string{"--plain-http", "--policy", pol, "--output", "json", ref})
			var out cli.Output
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("output %q: %v (stderr %s)", stdout.String(), err, stderr.String())
			}
			if tc.allowed {
				if code != cli.ExitAllowed || !out.Allowed || out.Digest != digest {
					t.Fatalf("got exit %d allowed %v digest %s, want 0, true, %s (reasons %+v)", code, out.Allowed, out.Digest, digest, out.Reasons)
				}
				return
			}
			if code != cli.ExitDenied || len(out.Reasons) == 0 || out.Reasons[0].Code != chartproofv1.ReasonRegistryUnauthorized {
				t.Fatalf("got exit %d reasons %+v, want 1 and %s", code, out.Reasons, chartproofv1.ReasonRegistryUnauthorized)
			}
		})
	}
}

// TestVerifyKeylessConfigMapRoot: a keyless policy whose trusted root is a
// ConfigMap document of the policy file (a private Sigstore). The policy
// naming the release workflow allows the chart and reports the signer; its
// twin, naming another workflow, refuses it with IdentityMismatch.
func TestVerifyKeylessConfigMapRoot(t *testing.T) {
	const (
		issuer   = "https://token.actions.githubusercontent.com"
		workflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
	)
	w := newWorld(t, worldOptions{})
	digest := w.pushHello(t, "charts/hello", "1.0.0")
	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SignKeyless(testsign.Statement(w.reg.Host+"/charts/hello", digest), testsign.KeylessOptions{
		Cert: testsign.Cert{URI: workflow, Issuer: issuer},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.reg.AttachBundle("charts/hello", digest, b, false); err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, subject, wantCode string
	}{
		{"release workflow", workflow, ""},
		{"another workflow", strings.Replace(workflow, "release.yaml", "nightly.yaml", 1), chartproofv1.ReasonIdentityMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policyYAML := fmt.Sprintf(`apiVersion: delivery.chartproof.dev/v1alpha1
kind: ClusterTrustPolicy
metadata:
  name: ci-keyless
spec:
  repositories:
  - %s/charts/hello
  authorities:
  - name: release
    keyless:
      trustedRoot:
        configMapRef:
          namespace: chartproof-system
          name: private-sigstore
      identities:
      - issuer: %s
        subject: %s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: private-sigstore
  namespace: chartproof-system
binaryData:
  trusted_root.json: %s
`, w.reg.Host, issuer, tc.subject, base64.StdEncoding.EncodeToString(rootJSON))
			pol := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(pol, []byte(policyYAML), 0o600); err != nil {
				t.Fatal(err)
			}
			res := verify(t, "--plain-http", "--policy", pol, "--output", "json", w.ref("charts/hello", "1.0.0"))
			var out cli.Output
			if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
				t.Fatalf("output %q: %v (stderr %s)", res.stdout, err, res.stderr)
			}
			if tc.wantCode == "" {
				if res.code != cli.ExitAllowed || len(out.Accepted) != 1 || out.Accepted[0].Identity == nil || out.Accepted[0].Identity.Subject != workflow {
					t.Fatalf("got exit %d accepted %+v reasons %+v, want 0 and the release workflow as signer", res.code, out.Accepted, out.Reasons)
				}
				if out.Accepted[0].Log == nil || out.Accepted[0].SignedAt == nil {
					t.Errorf("accepted %+v: want the log entry and the signing time", out.Accepted[0])
				}
				return
			}
			if res.code != cli.ExitDenied || len(out.Reasons) == 0 || out.Reasons[0].Code != tc.wantCode {
				t.Fatalf("got exit %d reasons %+v, want 1 and %s", res.code, out.Reasons, tc.wantCode)
			}
		})
	}
}
