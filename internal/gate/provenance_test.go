package gate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testchart"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

func compileProvenance(t *testing.T, host string, ring []*testsign.PGPKey, allowed *testsign.PGPKey) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{host + "/charts/**"},
		Authorities: []chartproofv1.Authority{{Name: "helm", HelmProvenance: &chartproofv1.HelmProvenanceAuthority{
			PublicKeys: testsign.ArmoredKeyring(ring...), Fingerprints: []string{allowed.Fingerprint()},
		}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(p.Authorities)
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

func newPGPKey(t *testing.T, name string) *testsign.PGPKey {
	t.Helper()
	k, err := testsign.NewPGPKey(name, testsign.PGPKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func archive(t *testing.T, version string) []byte {
	t.Helper()
	a, err := testchart.Archive("hello", version)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signProv is what `helm package --sign` writes for archive, saying the
// chart is hello at version.
func signProv(t *testing.T, k *testsign.PGPKey, version string, archive []byte) []byte {
	t.Helper()
	prov, err := k.ClearSign(testsign.ProvenanceText("hello", version, "hello-"+version+".tgz", archive), testsign.ClearSignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

// TestProvenanceGate: a chart pushed with a provenance layer, as `helm push`
// pushes it, verifies under a Helm provenance authority, and each attack of
// THREATS PRV-01, -02, -03 and -07 is refused with its reason code beside
// the control that passes.
func TestProvenanceGate(t *testing.T) {
	reg := newRegistry(t, false)
	release, intruder := newPGPKey(t, "release"), newPGPKey(t, "intruder")
	p, v := compileProvenance(t, reg.Host, []*testsign.PGPKey{release, intruder}, release)
	a010, a020 := archive(t, "0.1.0"), archive(t, "0.2.0")

	tests := []struct {
		name       string
		version    string
		archive    []byte
		prov       []byte // nil: no provenance layer
		wantCheck  string
		wantLoaded string
	}{
		{"control", "0.1.0", a010, signProv(t, release, "0.1.0", a010), chartproofv1.ReasonVerified, chartproofv1.ReasonVerified},
		{"PRV-01 no provenance layer", "0.1.0", a010, nil, chartproofv1.ReasonNoSignature, ""},
		{"PRV-02 signed by a keyring key not allowed", "0.1.0", a010, signProv(t, intruder, "0.1.0", a010), chartproofv1.ReasonUntrustedSigner, ""},
		{"PRV-03 provenance of another archive", "0.1.0", a010, signProv(t, release, "0.1.0", a020), chartproofv1.ReasonSubjectMismatch, ""},
		{"PRV-07 Chart.yaml copy of another version", "0.2.0", a020, signProv(t, release, "0.1.0", a020), chartproofv1.ReasonVerified, chartproofv1.ReasonProvenanceMismatch},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := "charts/" + itoa(i) + "/hello"
			var err error
			if tc.prov == nil {
				_, err = reg.PushChart(repo, tc.version, tc.archive, "hello", tc.version)
			} else {
				_, err = reg.PushChartWithProvenance(repo, tc.version, tc.archive, "hello", tc.version, tc.prov)
			}
			if err != nil {
				t.Fatal(err)
			}
			client := oci.NewClient(oci.Options{PlainHTTP: true})
			res := gate.Check(context.Background(), client, nil, gate.Request{URL: "oci://" + reg.Host + "/" + repo, Version: tc.version, Policy: p, Verifier: v})
			if res.Verdict.Code() != tc.wantCheck {
				t.Fatalf("Check: %s (%s), want %s", res.Verdict.Code(), res.Verdict.Message(), tc.wantCheck)
			}
			if tc.wantLoaded == "" {
				return
			}
			res = gate.Load(context.Background(), client, nil, res)
			if res.Verdict.Code() != tc.wantLoaded || (res.Chart != nil) != (tc.wantLoaded == chartproofv1.ReasonVerified) {
				t.Fatalf("Load: %s (%s), chart loaded %v; want %s", res.Verdict.Code(), res.Verdict.Message(), res.Chart != nil, tc.wantLoaded)
			}
			if tc.wantLoaded == chartproofv1.ReasonVerified {
				if acc := res.Verdict.Accepted; len(acc) != 1 || acc[0].Layout != policy.LayoutHelmProvenance || acc[0].KeyID != release.Fingerprint() {
					t.Fatalf("accepted %+v, want the release key's provenance", acc)
				}
			}
		})
	}
}

// TestProvenanceReadFailsClosed (THREATS PRV-06): a provenance layer the
// registry cuts off midway, or whose bytes differ from its digest, denies;
// the same proxy passing the layer through is the control.
func TestProvenanceReadFailsClosed(t *testing.T) {
	for _, mode := range []string{"control", "cut midway", "corrupted"} {
		t.Run(mode, func(t *testing.T) {
			handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
			var provPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if mode == "control" || provPath == "" || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, provPath) {
					handler.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				for k, vs := range rec.Header() {
					w.Header()[k] = vs
				}
				w.WriteHeader(rec.Code)
				if mode == "corrupted" {
					body[len(body)/2] ^= 1
					_, _ = w.Write(body)
					return
				}
				_, _ = w.Write(body[:len(body)/2])
				panic(http.ErrAbortHandler) // the connection drops mid-body
			}))
			t.Cleanup(srv.Close)
			reg := testsign.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
			release := newPGPKey(t, "release")
			p, v := compileProvenance(t, reg.Host, []*testsign.PGPKey{release}, release)
			a := archive(t, "0.1.0")
			prov := signProv(t, release, "0.1.0", a)
			if _, err := reg.PushChartWithProvenance("charts/hello", "0.1.0", a, "hello", "0.1.0", prov); err != nil {
				t.Fatal(err)
			}
			provPath = "/blobs/" + sha256Digest(prov)
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "0.1.0", Policy: p, Verifier: v,
			})
			if mode == "control" {
				if !res.Verdict.Passed() {
					t.Fatalf("Check: %s, want passed", res.Verdict.Message())
				}
				return
			}
			want := map[string]string{"cut midway": chartproofv1.ReasonRegistryUnavailable, "corrupted": chartproofv1.ReasonDigestMismatch}[mode]
			if res.Verdict.Allowed() || res.Verdict.Code() != want {
				t.Fatalf("Check: allowed %v, %s (%s); want denied, %s", res.Verdict.Allowed(), res.Verdict.Code(), res.Verdict.Message(), want)
			}
		})
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
