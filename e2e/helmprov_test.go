package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
)

// gpgHelm runs the real gpg and helm CLIs in a home of their own.
type gpgHelm struct {
	t   *testing.T
	dir string
	env []string
}

func newGPGHelm(t *testing.T) *gpgHelm {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg (Debian package gnupg) is needed to sign charts as `helm package --sign` does: %v", err)
	}
	dir := t.TempDir()
	gnupg := filepath.Join(dir, "gnupg")
	if err := os.Mkdir(gnupg, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpgHelm{t: t, dir: dir, env: isolatedEnv(t, "GNUPGHOME="+gnupg)}
	t.Cleanup(func() { // gpg leaves its agent running, outside our process group
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = g.env
		_ = kill.Run()
	})
	return g
}

func (g *gpgHelm) run(bin string, args ...string) result {
	g.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = g.dir, g.env
	return runCommand(g.t, cmd)
}

func (g *gpgHelm) mustRun(bin string, args ...string) result {
	g.t.Helper()
	res := g.run(bin, args...)
	if res.code != 0 {
		g.t.Fatalf("%s %s: %s", filepath.Base(bin), strings.Join(args, " "), res)
	}
	return res
}

// genKey makes a key without a passphrase, as a CI signing key is, and
// returns its fingerprint.
func (g *gpgHelm) genKey(uid, algo string) string {
	g.t.Helper()
	g.mustRun("gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never")
	out := g.mustRun("gpg", "--with-colons", "--list-keys", uid).stdout
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return f[9] // the primary key's: it comes first
		}
	}
	g.t.Fatalf("no fingerprint for %s in:\n%s", uid, out)
	return ""
}

// writeChart writes the hello chart's sources to <dir>/<under>/hello.
func (g *gpgHelm) writeChart(under, version string) string {
	g.t.Helper()
	dir := filepath.Join(g.dir, under, "hello")
	for name, content := range testchart.Files("hello", version) {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	return dir
}

// TestHelmProvenanceInterop (issue 10, Helm provenance): charts packaged with
// the real `helm package --sign` (gpg keys, the legacy secret keyring Helm
// reads) and pushed with the real `helm push` (which writes the .prov as the
// manifest's provenance layer) to the distribution registry verify with
// `chartproof verify` under a helmProvenance authority that allows the
// release key's fingerprint. The attacks are refused with their reason
// codes, each beside that control:
//   - PRV-02: a chart signed by another key of the same keyring. `helm
//     verify` accepts it (it trusts every key of the keyring it is given);
//     chartproof trusts the allowed fingerprints only: UntrustedSigner.
//   - a tampered .prov (its signed text edited, signature kept): helm verify
//     and chartproof both refuse it (UntrustedSigner).
//   - PRV-01: the same chart pushed without a .prov: NoSignature.
//   - PRV-03: the release key's .prov of another archive (a re-packaged
//     chart) pushed beside this archive: SubjectMismatch.
func TestHelmProvenanceInterop(t *testing.T) {
	t.Parallel()
	g := newGPGHelm(t)
	helm := tools.helm
	releaseFP := g.genKey("Chart Release <release@chartproof.invalid>", "rsa3072")
	g.genKey("Intruder <intruder@chartproof.invalid>", "ed25519")
	secring := filepath.Join(g.dir, "secring.gpg")
	pubring := filepath.Join(g.dir, "pubring.gpg")
	if err := os.WriteFile(secring, []byte(g.mustRun("gpg", "--export-secret-keys").stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubring, []byte(g.mustRun("gpg", "--export").stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	armored := g.mustRun("gpg", "--export", "--armor").stdout

	src := g.writeChart("src", chartVersion)
	pkg := func(out, key string) string {
		args := []string{"package", src, "-d", filepath.Join(g.dir, out)}
		if key != "" {
			args = append(args, "--sign", "--key", key, "--keyring", secring)
		}
		g.mustRun(helm, args...)
		return filepath.Join(g.dir, out, "hello-"+chartVersion+".tgz")
	}
	signed := pkg("signed", "Chart Release")
	intruder := pkg("intruder", "Intruder")
	unsigned := pkg("unsigned", "")

	// tampered: the release key's file with its signed text edited.
	prov, err := os.ReadFile(signed + ".prov")
	if err != nil {
		t.Fatal(err)
	}
	tamperedDir := filepath.Join(g.dir, "tampered")
	tampered := filepath.Join(tamperedDir, filepath.Base(signed))
	edited := bytes.Replace(prov, []byte("description: A small chart"), []byte("description: A trusted chart"), 1)
	if bytes.Equal(edited, prov) {
		t.Fatalf("the .prov has no description to edit:\n%s", prov)
	}
	copyFile(t, signed, tampered)
	if err := os.WriteFile(tampered+".prov", edited, 0o644); err != nil {
		t.Fatal(err)
	}
	// another archive: the unsigned archive of a chart with other values,
	// beside the release key's .prov of the signed one.
	otherSrc := g.writeChart("other-src", chartVersion)
	if err := os.WriteFile(filepath.Join(otherSrc, "values.yaml"), []byte("replicas: 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.mustRun(helm, "package", otherSrc, "-d", filepath.Join(g.dir, "swapped"))
	swapped := filepath.Join(g.dir, "swapped", filepath.Base(signed))
	copyFile(t, signed+".prov", swapped+".prov")

	// helm verify's own view, for comparison.
	if res := g.run(helm, "verify", signed, "--keyring", pubring); res.code != 0 {
		t.Fatalf("helm verify of the signed chart: %s", res)
	}
	if res := g.run(helm, "verify", intruder, "--keyring", pubring); res.code != 0 {
		t.Fatalf("helm verify of the intruder's chart: %s; want it accepted (Helm trusts every key of the keyring)", res)
	}
	if res := g.run(helm, "verify", tampered, "--keyring", pubring); res.code == 0 {
		t.Fatalf("helm verify accepted the tampered .prov: %s", res)
	}

	host := startRegistry(t).Host
	policyFile := writeProvenancePolicy(t, host+"/charts/*/hello", armored, releaseFP)
	tests := []struct {
		name, archive, repo, wantCode string
	}{
		{"control: signed by the release key", signed, "signed", chartproofv1.ReasonVerified},
		{"PRV-02 signed by another key of the keyring", intruder, "intruder", chartproofv1.ReasonUntrustedSigner},
		{"tampered .prov", tampered, "tampered", chartproofv1.ReasonUntrustedSigner},
		{"PRV-01 no .prov", unsigned, "unsigned", chartproofv1.ReasonNoSignature},
		{"PRV-03 .prov of another archive", swapped, "swapped", chartproofv1.ReasonSubjectMismatch},
	}
	for _, tc := range tests {
		g.mustRun(helm, "push", tc.archive, "oci://"+host+"/charts/"+tc.repo, "--plain-http")
		res, out := chartproofVerify(t, "oci://"+host+"/charts/"+tc.repo+"/hello:"+chartVersion, policyFile)
		if tc.wantCode == chartproofv1.ReasonVerified {
			if res.code != 0 || len(out.Accepted) != 1 || out.Accepted[0].Layout != "helm-provenance" || out.Accepted[0].KeyID != releaseFP {
				t.Errorf("%s: chartproof verify: %s; want exit 0, accepted by the release key's provenance", tc.name, res)
			}
			continue
		}
		if res.code != 1 || len(out.codes()) == 0 || out.codes()[0] != tc.wantCode {
			t.Errorf("%s: chartproof verify: %s; want exit 1, %s", tc.name, res, tc.wantCode)
		}
	}
}

// writeProvenancePolicy writes a ClusterTrustPolicy with one helmProvenance
// authority: the armored keyring, of which only fingerprint is allowed.
func writeProvenancePolicy(t *testing.T, glob, armored, fingerprint string) string {
	t.Helper()
	ctp := chartproofv1.ClusterTrustPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: chartproofv1.GroupVersion.String(), Kind: "ClusterTrustPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "helm-provenance"},
		Spec: chartproofv1.TrustPolicySpec{
			Repositories: []string{glob},
			Authorities: []chartproofv1.Authority{{Name: "release", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
				PublicKeys: armored, Fingerprints: []string{fingerprint},
			}}},
		},
	}
	data, err := yaml.Marshal(ctp)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
