package e2e

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
)

// cosignCLI runs one cosign binary with its state in temporary directories:
// HOME, TUF_ROOT, the Docker config, and an empty trusted root and signing
// config (no Fulcio, no Rekor, no TSA: the public Sigstore is unreachable).
type cosignCLI struct {
	t             *testing.T
	bin           string
	dir           string // working directory; keys are written here
	env           []string
	trustedRoot   string // from `cosign trusted-root create` (v3 only)
	signingConfig string // from `cosign signing-config create` (v3 only)
}

// newCosign prepares bin (cosign v2 or v3). For v3 it also creates the empty
// trusted root and signing config TOOLING.md describes.
func newCosign(t *testing.T, bin string, v3 bool) *cosignCLI {
	t.Helper()
	dir := t.TempDir()
	c := &cosignCLI{t: t, bin: bin, dir: dir,
		env: isolatedEnv(t, "TUF_ROOT="+filepath.Join(dir, "tuf"), "COSIGN_PASSWORD=")}
	if v3 {
		c.trustedRoot = filepath.Join(dir, "trusted-root.json")
		c.mustRun("trusted-root", "create", "--out", c.trustedRoot)
		c.signingConfig = filepath.Join(dir, "signing-config.json")
		c.mustRun("signing-config", "create", "--out", c.signingConfig)
	}
	return c
}

// run runs cosign with args and returns the outcome.
func (c *cosignCLI) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	return runCommand(c.t, cmd)
}

// mustRun runs cosign and fails the test unless it exits 0.
func (c *cosignCLI) mustRun(args ...string) result {
	c.t.Helper()
	res := c.run(args...)
	if res.code != 0 {
		c.t.Fatalf("%s %s: %s", c.bin, strings.Join(args, " "), res)
	}
	return res
}

// generateKeyPair runs `cosign generate-key-pair` (empty password) in a new
// subdirectory name and returns the paths of its cosign.key and cosign.pub.
func (c *cosignCLI) generateKeyPair(name string) (key, pub string) {
	c.t.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "generate-key-pair")
	cmd.Dir, cmd.Env = dir, c.env
	if res := runCommand(c.t, cmd); res.code != 0 {
		c.t.Fatalf("%s generate-key-pair: %s", c.bin, res)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}

// pushChart pushes testchart hello 1.0.0 to host/charts/hello as Helm does
// and returns its manifest digest.
func pushChart(t *testing.T, host, repo, version string) string {
	t.Helper()
	archive, err := testchart.Archive("hello", version)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := testsign.Registry{Host: host}.PushChart(repo, version, archive, "hello", version)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// pushSignedChart pushes hello at version to host/repo (pushChart) and signs
// it with a new key by the real cosign v3 (a Sigstore bundle, in the
// referrers fallback tag of the distribution registry). It returns the
// chart's digest, and the key's PEM and key ID.
func pushSignedChart(t *testing.T, host, repo, version string) (digest, pubPEM, keyID string) {
	t.Helper()
	digest = pushChart(t, host, repo, version)
	cosign := newCosign(t, tools.cosignV3, true)
	key, pub := cosign.generateKeyPair("signer")
	cosign.mustRun("sign", "--key", key, "--signing-config", cosign.signingConfig, "--trusted-root", cosign.trustedRoot,
		"--allow-http-registry", "--yes", host+"/"+repo+"@"+digest)
	pubPEM, keyID = readPublicKey(t, pub)
	return digest, pubPEM, keyID
}

// startReferrersRegistry serves go-containerregistry's registry with the OCI
// referrers API on loopback, in process.
func startReferrersRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// readPublicKey reads a PEM public key file and returns the PEM and the key
// ID chartproof reports: the hex sha256 of the DER public key.
func readPublicKey(t *testing.T, path string) (pemText, keyID string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("%s is not a PEM public key:\n%s", path, data)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	sum := sha256.Sum256(block.Bytes)
	return string(data), hex.EncodeToString(sum[:])
}

// keyPolicySpec is the spec of a policy in Enforce mode trusting
// publicKeyPEM, as authority "ci", for the repositories matching glob.
func keyPolicySpec(glob, publicKeyPEM string) chartproofv1.TrustPolicySpec {
	return chartproofv1.TrustPolicySpec{
		Repositories: []string{glob},
		Authorities:  []chartproofv1.Authority{{Name: "ci", Key: &chartproofv1.KeyAuthority{PublicKey: publicKeyPEM}}},
		Threshold:    1,
		Mode:         chartproofv1.ModeEnforce,
	}
}

// writePolicyFile writes a ClusterTrustPolicy trusting publicKeyPEM (as
// authority "ci") for repository, as `chartproof verify --policy` reads it.
func writePolicyFile(t *testing.T, repository, publicKeyPEM string) string {
	t.Helper()
	return writePolicyFileWith(t, repository, publicKeyPEM, func(*chartproofv1.TrustPolicySpec) {})
}

// writePolicyFileWith is writePolicyFile with the spec changed by mut.
func writePolicyFileWith(t *testing.T, repository, publicKeyPEM string, mut func(*chartproofv1.TrustPolicySpec)) string {
	t.Helper()
	ctp := chartproofv1.ClusterTrustPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: chartproofv1.GroupVersion.String(), Kind: "ClusterTrustPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "cosign-interop"},
		Spec:       keyPolicySpec(repository, publicKeyPEM),
	}
	mut(&ctp.Spec)
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

// verifyOutput is the JSON `chartproof verify --output json` prints: the
// part these tests read.
type verifyOutput struct {
	Allowed      bool   `json:"allowed"`
	Passed       bool   `json:"passed"`
	Inconclusive bool   `json:"inconclusive"`
	Repository   string `json:"repository"`
	Digest       string `json:"digest"`
	Reasons      []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
	Accepted []acceptance `json:"accepted"`
	// Attestations are the attestation requirements that held.
	Attestations []struct {
		Name string `json:"name"`
		acceptance
	} `json:"attestations"`
}

// acceptance is one accepted signature, as `chartproof verify` prints it and
// as a VerifiedHelmRelease's status.evidence records it (see evidence).
type acceptance struct {
	Authority string `json:"authority"`
	KeyID     string `json:"keyID"`
	Layout    string `json:"layout"`
	Signature string `json:"signature"`
}

func (o verifyOutput) codes() []string {
	codes := []string{}
	for _, r := range o.Reasons {
		codes = append(codes, r.Code)
	}
	return codes
}

// chartproofVerify runs the real `chartproof verify ... --output json` and
// returns its exit code and parsed output.
func chartproofVerify(t *testing.T, ref, policyFile string) (result, verifyOutput) {
	t.Helper()
	res := runCLI(t, "verify", ref, "--policy", policyFile, "--plain-http", "--output", "json")
	var out verifyOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("chartproof verify %s: output is not JSON: %v\n%s", ref, err, res)
	}
	return res, out
}
