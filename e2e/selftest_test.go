package e2e

import (
	"encoding/json"
	"os/exec"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// selftestReport is the part of `chartproof selftest --output json` these
// tests read.
type selftestReport struct {
	Control struct {
		Allowed bool   `json:"allowed"`
		Digest  string `json:"digest"`
		Ref     string `json:"ref"`
	} `json:"control"`
	Attacks []struct {
		Name    string `json:"name"`
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
		Digest  string `json:"digest"`
	} `json:"attacks"`
	FalseAllows int `json:"falseAllows"`
}

// TestSelftestCosignInterop runs the command line build's `chartproof
// selftest` against the CNCF distribution registry with key pairs made by
// the real cosign: a policy trusting the release key refuses every attack
// (exit 0), and the same policy trusting the staging key too is caught with
// the one chart that key signed (exit 1). cosign itself accepts the
// control's signature the self-test wrote and refuses the one it copied
// onto another digest: the signatures are cosign's, not a dialect of ours.
func TestSelftestCosignInterop(t *testing.T) {
	reg := startRegistry(t)
	cosign := newCosign(t, tools.cosignV2, false)
	releaseKey, releasePub := cosign.generateKeyPair("release")
	stagingKey, stagingPub := cosign.generateKeyPair("staging")
	releasePEM, _ := readPublicKey(t, releasePub)
	stagingPEM, _ := readPublicKey(t, stagingPub)

	run := func(repository, policyFile string) (result, selftestReport) {
		t.Helper()
		cmd := exec.Command(cliBin, "selftest", "--policy", policyFile, "--repository", "oci://"+reg.Host+"/"+repository,
			"--key", releaseKey, "--untrusted-key", stagingKey, "--plain-http", "--output", "json")
		cmd.Env = isolatedEnv(t, "COSIGN_PASSWORD=")
		res := runCommand(t, cmd)
		var r selftestReport
		if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
			t.Fatalf("chartproof selftest: output is not JSON: %v\n%s", err, res)
		}
		return res, r
	}

	res, r := run("scratch/correct", writePolicyFile(t, reg.Host+"/scratch/**", releasePEM))
	if res.code != 0 || !r.Control.Allowed || r.FalseAllows != 0 || len(r.Attacks) != 8 {
		t.Fatalf("correct policy: exit %d, control allowed %v, %d false allows of %d; want 0, true, 0 of 8\n%s", res.code, r.Control.Allowed, r.FalseAllows, len(r.Attacks), res)
	}
	control, copied := r.Control.Digest, ""
	for _, a := range r.Attacks {
		if a.Allowed {
			t.Errorf("correct policy: %s allowed", a.Name)
		}
		if a.Name == "copied-signature" {
			copied = a.Digest
		}
	}

	res, r = run("scratch/weak", writePolicyFileWith(t, reg.Host+"/scratch/**", releasePEM, func(s *chartproofv1.TrustPolicySpec) {
		s.Authorities = append(s.Authorities, chartproofv1.Authority{Name: "staging", Key: &chartproofv1.KeyAuthority{PublicKey: stagingPEM}})
	}))
	if res.code != 1 || r.FalseAllows != 1 {
		t.Fatalf("policy trusting the staging key: exit %d, %d false allows; want 1, 1\n%s", res.code, r.FalseAllows, res)
	}
	for _, a := range r.Attacks {
		if a.Allowed != (a.Name == "other-key-2") {
			t.Errorf("policy trusting the staging key: %s allowed %v (%s)", a.Name, a.Allowed, a.Reason)
		}
	}

	// cosign's own verdicts on what the first run wrote.
	repo := reg.Host + "/scratch/correct/chartproof-selftest"
	verify := func(digest string) result {
		return cosign.run("verify", "--key", releasePub, "--insecure-ignore-tlog", "--allow-http-registry", repo+"@"+digest)
	}
	if got := verify(control); got.code != 0 {
		t.Errorf("cosign verify of the control: %s", got)
	}
	if got := verify(copied); got.code == 0 {
		t.Errorf("cosign verify of the copied signature passed: %s", got)
	}
}
