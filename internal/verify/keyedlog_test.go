package verify

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
)

// TestKeyRequiresTransparencyLog signs keyed bundles, logged in a throwaway
// Rekor log or not, and checks the verdict under a key authority with
// requireTransparencyLog (the log in the trusted root of ConfigMap
// ns/sigstore). Each refusal has a control twin; the last row is the same
// unlogged signature under the same key without the requirement.
func TestKeyRequiresTransparencyLog(t *testing.T) {
	s := newSigstore(t)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	stmt := testsign.Statement(repo, digestA)
	logged := func(o testsign.KeyedLogOptions) func() ([]byte, error) {
		return func() ([]byte, error) { return s.SignKeyedLogged(stmt, key, o) }
	}
	unlogged := func() ([]byte, error) { return testsign.Bundle(stmt, key) }

	tests := []struct {
		name        string
		require     bool
		sign        func() ([]byte, error)
		want        string
		wantProblem string // for NotLogged: why, in part
	}{
		{name: "control: logged keyed signature", require: true, sign: logged(testsign.KeyedLogOptions{}), want: chartproofv1.ReasonVerified},
		{name: "no log entry (SIG-07)", require: true, sign: unlogged, want: chartproofv1.ReasonNotLogged, wantProblem: "not enough verified log entries"},
		{name: "log entry for another artifact (SIG-01)", require: true, sign: logged(testsign.KeyedLogOptions{LogStatement: testsign.Statement(repo, digestB)}), want: chartproofv1.ReasonNotLogged, wantProblem: "does not match"},
		{name: "entry in a log the trusted root does not list", require: true, sign: logged(testsign.KeyedLogOptions{OtherLog: true}), want: chartproofv1.ReasonNotLogged, wantProblem: "not enough verified log entries"},
		{name: "control: unlogged signature, log not required", require: false, sign: unlogged, want: chartproofv1.ReasonVerified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rootJSON, err := s.TrustedRootJSON(false)
			if err != nil {
				t.Fatal(err)
			}
			a := chartproofv1.Authority{Name: "release", Key: &chartproofv1.KeyAuthority{PublicKey: key.PublicPEM(), RequireTransparencyLog: tc.require}}
			if tc.require {
				a.Key.TrustedRoot = &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}}
			}
			p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"},
				chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{a}},
				objects{"ns/sigstore/trusted_root.json": rootJSON})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			v, err := New(p.Authorities)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			b, err := tc.sign()
			if err != nil {
				t.Fatal(err)
			}
			sig, ok := v.Bundle(b)
			if !ok {
				t.Fatalf("Bundle: not a signature: %+v", sig)
			}
			sig.Layout, sig.Ref = policy.LayoutSigstoreBundle, "sha256:ref"
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s); want %s\nsignature: %+v", got, verdict.Message(), tc.want, sig)
			}
			switch {
			case tc.wantProblem != "":
				if sig.Authority != "release" || len(sig.Log) != 0 || !strings.Contains(sig.LogProblem, tc.wantProblem) {
					t.Errorf("signature %+v: want the key verified, no log entry, and a log problem saying %q", sig, tc.wantProblem)
				}
			case tc.require:
				acc := verdict.Accepted[0]
				logID, err := s.Virtual.RekorLogID()
				if err != nil {
					t.Fatal(err)
				}
				if acc.Log == nil || acc.Log.LogID != logID || acc.SignedAt == nil || time.Since(*acc.SignedAt) > 5*time.Minute {
					t.Errorf("acceptance %+v: want the log entry of log %s and its integrated time", acc, logID)
				}
			}
		})
	}
}

// TestKeyValidityWindow (SIG-09): a key authority with validFor counts a
// signature only when the signing time its log vouches for (here the
// integrated time, a minute ago) lies in the window. A retired key's old
// signatures still count; its new ones do not.
func TestKeyValidityWindow(t *testing.T) {
	s := newSigstore(t)
	key, err := testsign.NewKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := s.TrustedRootJSON(false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.SignKeyedLogged(testsign.Statement(repo, digestA), key, testsign.KeyedLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	for _, tc := range []struct {
		name  string
		start *metav1.Time
		end   *metav1.Time
		want  string
	}{
		{"control: signed inside the window", at(-time.Hour), at(time.Hour), chartproofv1.ReasonVerified},
		{"control: a window without end", at(-time.Hour), nil, chartproofv1.ReasonVerified},
		{"signed after the key was retired (SIG-09)", at(-time.Hour), at(-30 * time.Minute), chartproofv1.ReasonKeyNotValidAtSigningTime},
		{"signed before the key was valid (SIG-09)", at(30 * time.Minute), nil, chartproofv1.ReasonKeyNotValidAtSigningTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := chartproofv1.Authority{Name: "release", Key: &chartproofv1.KeyAuthority{
				PublicKey: key.PublicPEM(), RequireTransparencyLog: true,
				TrustedRoot: &chartproofv1.TrustedRootReference{ConfigMapRef: &chartproofv1.TrustedRootKeyReference{Name: "sigstore"}},
				ValidFor:    &chartproofv1.ValidityWindow{Start: *tc.start, End: tc.end},
			}}
			p, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"},
				chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example.com/team/*"}, Authorities: []chartproofv1.Authority{a}},
				objects{"ns/sigstore/trusted_root.json": rootJSON})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			v, err := New(p.Authorities)
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := v.Bundle(b)
			verdict := policy.Evaluate(p, policy.Evidence{Repository: repo, Digest: digestA, Signatures: []policy.Signature{sig}})
			if got := verdict.Code(); got != tc.want {
				t.Fatalf("verdict %s (%s), want %s", got, verdict.Message(), tc.want)
			}
		})
	}
}
