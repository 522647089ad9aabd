package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/testsign"
)

const (
	agreeIssuer   = "https://token.actions.githubusercontent.com"
	agreeWorkflow = "https://github.com/org/charts/.github/workflows/release.yaml@refs/tags/v1.0.0"
)

// TestVerifyBlobAgreesWithCosign feeds every kind of bundle the unit tests
// make with the throwaway Sigstore (internal/testsign) to both
// `chartproof verify-blob` and the real `cosign verify-blob` (v3), with the
// same flags, and requires the same verdict: accepted by both, or refused by
// both, chartproof with the reason code the row names.
//
// Flags that differ on purpose, added to cosign's command line only:
//   - --insecure-ignore-sct: the throwaway trusted root lists no CT log;
//     chartproof requires SCTs exactly when the root lists CT logs, cosign
//     always unless told otherwise.
//   - --trusted-root always, and --insecure-ignore-tlog for the keyed rows
//     that do not ask for the log: cosign requires a log entry for keys by
//     default and needs a trusted root to read its logs (the public one is
//     unreachable); chartproof verify-blob requires the log for a key
//     exactly when --trusted-root is given (a policy's
//     requireTransparencyLog).
func TestVerifyBlobAgreesWithCosign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	artifact := write("artifact.txt", []byte("the artifact both verifiers check\n"))
	sum := sha256.Sum256([]byte("the artifact both verifiers check\n"))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	stmt := testsign.Statement("artifact.txt", digest)

	s, err := testsign.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	root := write("trusted_root.json", rootJSON)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := write("key.pub", []byte(key.PublicPEM()))
	other, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	otherPEM := write("other.pub", []byte(other.PublicPEM()))

	now := time.Now()
	cert := testsign.Cert{URI: agreeWorkflow, Issuer: agreeIssuer}
	expired := cert
	expired.NotBefore, expired.NotAfter = now.Add(-30*time.Minute), now.Add(-20*time.Minute)
	keyless := func(o testsign.KeylessOptions) func() ([]byte, error) {
		return func() ([]byte, error) { return s.SignKeyless(stmt, o) }
	}
	unloggedKey := func(stmt []byte) func() ([]byte, error) {
		return func() ([]byte, error) { return testsign.Bundle(stmt, key) }
	}
	loggedKey := func(o testsign.KeyedLogOptions) func() ([]byte, error) {
		return func() ([]byte, error) { return s.SignKeyedLogged(stmt, key, o) }
	}
	noLog := []string{"--insecure-ignore-tlog=true"}
	identity := []string{"--certificate-identity", agreeWorkflow, "--certificate-oidc-issuer", agreeIssuer}
	otherIdentity := []string{"--certificate-identity", strings.Replace(agreeWorkflow, "release", "nightly", 1), "--certificate-oidc-issuer", agreeIssuer}

	tests := []struct {
		name       string
		sign       func() ([]byte, error)
		flags      []string // the authority: identity or key
		cosignOnly []string // see the function comment
		want       string   // chartproof's reason code, Verified when accepted
	}{
		// Keyless: chartproof verify-blob gets --trusted-root too.
		{name: "control: keyless", sign: keyless(testsign.KeylessOptions{Cert: cert}), flags: identity, want: chartproofv1.ReasonVerified},
		{name: "keyless, another identity", sign: keyless(testsign.KeylessOptions{Cert: cert}), flags: otherIdentity, want: chartproofv1.ReasonIdentityMismatch},
		{name: "keyless, another issuer", sign: keyless(testsign.KeylessOptions{Cert: testsign.Cert{URI: agreeWorkflow, Issuer: "https://evil.example"}}), flags: identity, want: chartproofv1.ReasonIdentityMismatch},
		{name: "control: keyless with a timestamp too", sign: keyless(testsign.KeylessOptions{Cert: cert, Timestamp: true}), flags: identity, want: chartproofv1.ReasonVerified},
		{name: "control: expired now, valid at the log's time", sign: keyless(testsign.KeylessOptions{Cert: expired, LoggedAt: now.Add(-25 * time.Minute)}), flags: identity, want: chartproofv1.ReasonVerified},
		{name: "expired at the log's time (SIG-03)", sign: keyless(testsign.KeylessOptions{Cert: expired, LoggedAt: now.Add(-10 * time.Minute)}), flags: identity, want: chartproofv1.ReasonUntrustedSigner},
		{name: "no log entry, timestamp only", sign: keyless(testsign.KeylessOptions{Cert: cert, NoLog: true}), flags: identity, want: chartproofv1.ReasonUntrustedSigner},
		{name: "tampered inclusion proof (SIG-02)", sign: keyless(testsign.KeylessOptions{Cert: cert, TamperInclusionProof: true}), flags: identity, want: chartproofv1.ReasonUntrustedSigner},
		{name: "checkpoint of an unknown log (SIG-02)", sign: keyless(testsign.KeylessOptions{Cert: cert, CheckpointFromOtherLog: true}), flags: identity, want: chartproofv1.ReasonUntrustedSigner},
		{name: "log entry for another artifact (SIG-01)", sign: keyless(testsign.KeylessOptions{Cert: cert, LogStatement: testsign.Statement("artifact.txt", "sha256:"+strings.Repeat("0", 64))}), flags: identity, want: chartproofv1.ReasonUntrustedSigner},
		{name: "certificate from an untrusted CA", sign: keyless(testsign.KeylessOptions{Cert: testsign.Cert{Email: "alice@example.com", Issuer: agreeIssuer, UntrustedCA: true}}),
			flags: []string{"--certificate-identity", "alice@example.com", "--certificate-oidc-issuer", agreeIssuer}, want: chartproofv1.ReasonUntrustedSigner},

		{name: "control: key", sign: unloggedKey(stmt), flags: []string{"--key", keyPEM}, cosignOnly: noLog, want: chartproofv1.ReasonVerified},
		{name: "another key", sign: unloggedKey(stmt), flags: []string{"--key", otherPEM}, cosignOnly: noLog, want: chartproofv1.ReasonUntrustedSigner},
		{name: "key, signing another artifact", sign: unloggedKey(testsign.Statement("x", "sha256:"+strings.Repeat("1", 64))),
			flags: []string{"--key", keyPEM}, cosignOnly: noLog, want: chartproofv1.ReasonSubjectMismatch},
		{name: "control: key and its log", sign: loggedKey(testsign.KeyedLogOptions{}), flags: []string{"--key", keyPEM, "--trusted-root", root}, want: chartproofv1.ReasonVerified},
		{name: "key and its log, unlogged (SIG-07)", sign: unloggedKey(stmt), flags: []string{"--key", keyPEM, "--trusted-root", root}, want: chartproofv1.ReasonNotLogged},
		{name: "key and its log, entry in an unknown log", sign: loggedKey(testsign.KeyedLogOptions{OtherLog: true}), flags: []string{"--key", keyPEM, "--trusted-root", root}, want: chartproofv1.ReasonNotLogged},
		{name: "key and its log, entry for another artifact (SIG-01)", sign: loggedKey(testsign.KeyedLogOptions{LogStatement: testsign.Statement("x", "sha256:"+strings.Repeat("1", 64))}),
			flags: []string{"--key", keyPEM, "--trusted-root", root}, want: chartproofv1.ReasonNotLogged},
	}
	cosign := newCosign(t, tools.cosignV3, true)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.sign()
			if err != nil {
				t.Fatal(err)
			}
			bundle := write("bundle-"+strings.Repeat("x", i)+".json", b)
			flags := append([]string{"--bundle", bundle}, tc.flags...)
			if tc.flags[0] != "--key" {
				flags = append(flags, "--trusted-root", root)
			}

			ours := runCLI(t, append(append([]string{"verify-blob", "--output", "json"}, flags...), artifact)...)
			var out struct {
				Allowed bool `json:"allowed"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(ours.stdout), &out); err != nil {
				t.Fatalf("chartproof verify-blob: output is not JSON: %v\n%s", err, ours)
			}
			code := chartproofv1.ReasonVerified
			if len(out.Reasons) > 0 {
				code = out.Reasons[0].Code
			}
			if code != tc.want || out.Allowed != (tc.want == chartproofv1.ReasonVerified) {
				t.Fatalf("chartproof verify-blob: %s (allowed %v), want %s\n%s", code, out.Allowed, tc.want, ours)
			}
			wantExit := 1
			if out.Allowed {
				wantExit = 0
			}
			if ours.code != wantExit {
				t.Errorf("chartproof verify-blob exit %d, want %d", ours.code, wantExit)
			}

			cosignFlags := append(flags, tc.cosignOnly...)
			if !strings.Contains(strings.Join(cosignFlags, " "), "--trusted-root") {
				cosignFlags = append(cosignFlags, "--trusted-root", root)
			}
			theirs := cosign.run(append(append([]string{"verify-blob", "--insecure-ignore-sct=true"}, cosignFlags...), artifact)...)
			if (theirs.code == 0) != out.Allowed {
				t.Errorf("cosign verify-blob disagrees: chartproof allowed=%v, cosign:\n%s", out.Allowed, theirs)
			}
		})
	}
}
