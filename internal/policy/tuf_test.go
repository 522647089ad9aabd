package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// tufObjects is a policy.Reader with a TUF client that answers every
// repository with root, or with err, and records what it was asked.
type tufObjects struct {
	objects
	root  []byte
	err   error
	asked *[]policy.TUFRepository
}

func (o tufObjects) TUFTrustedRoot(repo policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	*o.asked = append(*o.asked, repo)
	if o.err != nil {
		return policy.TUFTrustedRoot{}, o.err
	}
	return policy.TUFTrustedRoot{JSON: o.root, Digest: "sha256:x", Expires: time.Now().Add(time.Hour)}, nil
}

func tufAuthority(t chartproofv1.TUFRepositoryReference) chartproofv1.Authority {
	return chartproofv1.Authority{Name: "ci", Keyless: &chartproofv1.KeylessAuthority{
		TrustedRoot: &chartproofv1.TrustedRootReference{TUF: &t},
		Identities:  []chartproofv1.Identity{{Issuer: ghIssuer, Subject: ghWorkflow}},
	}}
}

// TestCompileTUF: a keyless authority's trusted root read from a TUF
// repository. Only the public-good repository, from the root chartproof
// ships, falls back to the embedded trusted root, and only while it cannot
// be read (unavailable); what did not verify (refused) is never replaced.
// A mirror needs its root.json; an air-gapped copy is read from its
// ConfigMap by file name.
func TestCompileTUF(t *testing.T) {
	rootJSON := trustedRootJSON(t)
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "team", Name: "p"}
	unavailable := fmt.Errorf("%w: down", policy.ErrTrustedRootUnavailable)
	refused := fmt.Errorf("%w: timestamp expired", policy.ErrTrustedRootRefused)
	pinned := objects{"configmap:team/tuf-root/root.json": []byte(`{"signed":{}}`), "configmap:team/copy/timestamp.json": []byte("ts")}
	cases := []struct {
		name     string
		tuf      chartproofv1.TUFRepositoryReference
		err      error  // what the TUF client answers
		wantErr  error  // nil: compiles
		errText  string // in the error
		source   string // in the trusted root's source
		embedded bool   // the embedded root is used
	}{
		{name: "public-good (control)", source: "tuf " + policy.PublicGoodTUF},
		{name: "public-good unavailable: the embedded root", err: unavailable, source: "embedded", embedded: true},
		{name: "public-good refused: no fallback", err: refused, wantErr: policy.ErrTrustedRootRefused},
		{name: "mirror (control)", tuf: chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com", Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}},
			source: "tuf https://tuf.example.com"},
		{name: "mirror unavailable: no fallback", tuf: chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com", Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}},
			err: unavailable, wantErr: policy.ErrTrustedRootUnavailable},
		{name: "public-good URL with another root: no fallback", tuf: chartproofv1.TUFRepositoryReference{URL: policy.PublicGoodTUF, Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}},
			err: unavailable, wantErr: policy.ErrTrustedRootUnavailable},
		{name: "mirror without root", tuf: chartproofv1.TUFRepositoryReference{URL: "https://tuf.example.com"}, wantErr: policy.ErrInvalid, errText: "no root"},
		{name: "refresh below the minimum", tuf: chartproofv1.TUFRepositoryReference{RefreshInterval: &metav1.Duration{Duration: time.Second}}, wantErr: policy.ErrInvalid, errText: "refreshInterval 1s is below"},
		{name: "air-gapped copy", tuf: chartproofv1.TUFRepositoryReference{ConfigMapRef: &chartproofv1.TUFFilesReference{Name: "copy"}, Root: &chartproofv1.TUFRootReference{Name: "tuf-root"}},
			source: "tuf configMap team/copy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked []policy.TUFRepository
			read := tufObjects{objects: pinned, root: rootJSON, err: tc.err, asked: &asked}
			spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example/charts/*"}, Threshold: 1, Authorities: []chartproofv1.Authority{tufAuthority(tc.tuf)}}
			p, err := policy.Compile(ref, spec, read)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Compile: %v, want %v (%q)", err, tc.wantErr, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			k := p.Authorities[0].Keyless
			if !strings.Contains(k.RootSource, tc.source) || (k.TrustedRoot == nil) != tc.embedded {
				t.Fatalf("trusted root from %q (parsed: %v), want %q, embedded %v", k.RootSource, k.TrustedRoot != nil, tc.source, tc.embedded)
			}
			if len(asked) != 1 {
				t.Fatalf("the TUF client was asked %d times, want once", len(asked))
			}
			repo := asked[0]
			if tc.tuf.Root != nil && string(repo.Root) != `{"signed":{}}` {
				t.Fatalf("the client starts from %q, want the pinned root.json", repo.Root)
			}
			if tc.tuf.ConfigMapRef != nil {
				if b, err := repo.Files("timestamp.json"); err != nil || string(b) != "ts" {
					t.Fatalf("the copy's timestamp.json = %q, %v; want it read from the ConfigMap", b, err)
				}
			}
		})
	}
}

// TestTUFRootInFingerprint: the policy's fingerprint, which keys the verification
// cache, follows the trusted root the TUF repository serves.
func TestTUFRootInFingerprint(t *testing.T) {
	ref := policy.Ref{Kind: "TrustPolicy", Namespace: "team", Name: "p"}
	spec := chartproofv1.TrustPolicySpec{Repositories: []string{"registry.example/charts/*"}, Threshold: 1, Authorities: []chartproofv1.Authority{tufAuthority(chartproofv1.TUFRepositoryReference{})}}
	id := func(root []byte) string {
		var asked []policy.TUFRepository
		p, err := policy.Compile(ref, spec, tufObjects{objects: objects{}, root: root, asked: &asked})
		if err != nil {
			t.Fatal(err)
		}
		return p.Fingerprint
	}
	a, b := trustedRootJSON(t), trustedRootJSON(t)
	if id(a) != id(a) {
		t.Fatal("the same trusted root gives two fingerprints")
	}
	if id(a) == id(b) {
		t.Fatal("another trusted root gives the same fingerprint")
	}
}
