package cli_test

import (
	"bytes"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/cli"
	"github.com/chartproof/chartproof/internal/selftest"
)

// selftestKey writes a cosign-format key pair (encrypted with
// COSIGN_PASSWORD, as cosign generate-key-pair writes it) and returns the
// private key's path and the public key's PEM.
func selftestKey(t *testing.T, name string) (string, string) {
	t.Helper()
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".key")
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, string(pub)
}

// selftestPolicy is a TrustPolicy for host/selftest/** trusting each PEM
// as an authority of its own, in mode.
func selftestPolicy(t *testing.T, host, mode string, pems ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: delivery.chartproof.dev/v1alpha1\nkind: TrustPolicy\nmetadata:\n  name: prod\n  namespace: apps\nspec:\n  mode: %s\n  repositories: [%q]\n  authorities:\n", mode, host+"/selftest/**")
	for i, p := range pems {
		fmt.Fprintf(&b, "  - name: key-%d\n    key:\n      publicKey: |\n        %s\n", i, strings.ReplaceAll(strings.TrimSpace(p), "\n", "\n        "))
	}
	return writeFile(t, b.String())
}

func runSelftest(t *testing.T, args ...string) (int, selftest.Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Selftest(t.Context(), cli.Env{Stdout: &stdout, Stderr: &stderr, Keychain: authn.NewMultiKeychain()}, append(args, "--output", "json"))
	var r selftest.Report
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
	}
	return code, r, stderr.String()
}

// TestSelftest: a correct policy refuses every attack, each for the reason
// its attack meets (the controls are allowed: each refusal is the attack's),
// and the run exits 0, leaving the tags the repository had where they were; a policy that also trusts a staging key is caught
// with one false allow (the chart that key signed) and exit 1; in Audit
// mode every attack on signatures is a false allow (the malformed ones are
// refused in any mode); a policy that does not trust --key
// measures nothing and exits 3.
func TestSelftest(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "s3cret")
	w := newWorld(t, worldOptions{})
	trusted, trustedPEM := selftestKey(t, "release")
	staging, stagingPEM := selftestKey(t, "staging")
	_, otherPEM := selftestKey(t, "other")
	repo := func(name string) string { return "oci://" + w.reg.Host + "/selftest/" + name }
	want := map[string]string{
		"unsigned":           chartproofv1.ReasonNoSignature,
		"other-key-1":        chartproofv1.ReasonUntrustedSigner,
		"other-key-2":        chartproofv1.ReasonUntrustedSigner,
		"copied-signature":   chartproofv1.ReasonSubjectMismatch,
		"tag-moved":          chartproofv1.ReasonNoSignature,
		"identity-mismatch":  chartproofv1.ReasonInvalidChart,
		"second-chart-layer": chartproofv1.ReasonInvalidManifest,
		"hostile-archive":    chartproofv1.ReasonInvalidChart,
	}

	t.Run("a correct policy refuses every attack", func(t *testing.T) {
		// A release the repository already holds, under the sample
		// chart's version: the run must leave it where it is.
		archive, chartName, version, err := selftest.SampleChart()
		if err != nil {
			t.Fatal(err)
		}
		existing := "selftest/correct/" + chartName
		if _, err := w.reg.PushChart(existing, version, archive, chartName, version); err != nil {
			t.Fatal(err)
		}
		before, err := w.reg.RawManifest(existing, version)
		if err != nil {
			t.Fatal(err)
		}
		code, r, stderr := runSelftest(t, "--policy", selftestPolicy(t, w.reg.Host, "Enforce", trustedPEM), "--repository", repo("correct"),
			"--key", trusted, "--untrusted-key", staging, "--plain-http")
		if code != cli.SelftestPassed || !r.Control.Allowed || r.FalseAllows != 0 {
			t.Fatalf("exit %d, control %+v, false allows %d; want 0, allowed, 0\n%s", code, r.Control, r.FalseAllows, stderr)
		}
		if len(r.Attacks) != len(want) {
			t.Errorf("%d attacks, want %d", len(r.Attacks), len(want))
		}
		if after, err := w.reg.RawManifest(existing, version); err != nil || after != before {
			t.Errorf("%s:%s was moved by the run (%v)", existing, version, err)
		}
		if !r.MovedTagBefore.Allowed {
			t.Errorf("the moved tag's signed chart, before the move: %+v; want allowed", r.MovedTagBefore)
		}
		// What each structural refusal names: the attack, not another
		// flaw of the variant.
		says := map[string]string{
			"identity-mismatch":  "the Helm config says chartproof-selftest 0.1.0-other",
			"second-chart-layer": "2 chart layers",
			"hostile-archive":    `".." path segment`,
		}
		for _, c := range r.Attacks {
			if c.Allowed || c.Reason != want[c.Name] || !strings.Contains(c.Message, says[c.Name]) {
				t.Errorf("%s: allowed %v reason %s (%s); want refused with %s, saying %q", c.Name, c.Allowed, c.Reason, c.Message, want[c.Name], says[c.Name])
			}
		}
	})
	t.Run("a policy that trusts the staging key is caught", func(t *testing.T) {
		code, r, _ := runSelftest(t, "--policy", selftestPolicy(t, w.reg.Host, "Enforce", trustedPEM, stagingPEM), "--repository", repo("weak"),
			"--key", trusted, "--untrusted-key", staging, "--plain-http")
		if code != cli.SelftestFalseAllow || r.FalseAllows != 1 {
			t.Fatalf("exit %d, false allows %d; want 1, 1", code, r.FalseAllows)
		}
		for _, c := range r.Attacks {
			if c.Allowed != (c.Name == "other-key-2") {
				t.Errorf("%s: allowed %v (%s)", c.Name, c.Allowed, c.Reason)
			}
		}
	})
	t.Run("the text report names the false allow", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := cli.Selftest(t.Context(), cli.Env{Stdout: &stdout, Stderr: &stderr, Keychain: authn.NewMultiKeychain()},
			[]string{"--policy", selftestPolicy(t, w.reg.Host, "Enforce", trustedPEM, stagingPEM), "--repository", repo("text"),
				"--key", trusted, "--untrusted-key", staging, "--plain-http"})
		out := stdout.String()
		if code != cli.SelftestFalseAllow {
			t.Fatalf("exit %d, want %d\n%s%s", code, cli.SelftestFalseAllow, out, stderr.String())
		}
		var falseAllows []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "FALSE ALLOW") {
				falseAllows = append(falseAllows, strings.Fields(line)[0])
			}
		}
		if len(falseAllows) != 1 || falseAllows[0] != "other-key-2" || !strings.Contains(out, "false allows: 1 of 8 attacks (12.5%)") {
			t.Errorf("text report: FALSE ALLOW rows %q; want other-key-2 only, and the rate 1 of 8:\n%s", falseAllows, out)
		}
	})
	t.Run("Audit mode allows every attack on signatures", func(t *testing.T) {
		code, r, _ := runSelftest(t, "--policy", selftestPolicy(t, w.reg.Host, "Audit", trustedPEM), "--repository", repo("audit"),
			"--key", trusted, "--plain-http")
		// What is malformed is refused in any mode; everything else
		// Audit installs.
		structural := map[string]bool{"identity-mismatch": true, "second-chart-layer": true, "hostile-archive": true}
		if code != cli.SelftestFalseAllow || r.FalseAllows != len(r.Attacks)-len(structural) {
			t.Fatalf("exit %d, false allows %d of %d; want 1, all but the malformed", code, r.FalseAllows, len(r.Attacks))
		}
		for _, c := range r.Attacks {
			if c.Allowed == structural[c.Name] {
				t.Errorf("%s: allowed %v (%s)", c.Name, c.Allowed, c.Reason)
			}
		}
	})
	t.Run("a policy that does not trust --key measures nothing", func(t *testing.T) {
		code, r, _ := runSelftest(t, "--policy", selftestPolicy(t, w.reg.Host, "Enforce", otherPEM), "--repository", repo("untrusted"),
			"--key", trusted, "--plain-http")
		if code != cli.SelftestNotJudgeable || r.Control.Allowed || r.Control.Reason != chartproofv1.ReasonUntrustedSigner {
			t.Fatalf("exit %d, control %+v; want 3, refused UntrustedSigner", code, r.Control)
		}
		var stdout bytes.Buffer
		code = cli.Selftest(t.Context(), cli.Env{Stdout: &stdout, Stderr: io.Discard, Keychain: authn.NewMultiKeychain()},
			[]string{"--policy", selftestPolicy(t, w.reg.Host, "Enforce", otherPEM), "--repository", repo("untrusted-text"), "--key", trusted, "--plain-http"})
		if code != cli.SelftestNotJudgeable || !strings.Contains(stdout.String(), "NOT MEASURED: the control was refused (UntrustedSigner") {
			t.Errorf("text report: exit %d\n%s", code, stdout.String())
		}
	})
}
