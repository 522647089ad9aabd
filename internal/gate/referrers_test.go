package gate_test

import (
	"context"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/gate"
	"github.com/chartproof/chartproof/internal/oci"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testsign"
	"github.com/chartproof/chartproof/internal/verify"
)

// descriptor is the descriptor of the manifest at digest in repo.
func descriptor(t *testing.T, reg testsign.Registry, repo, digest string) v1.Descriptor {
	t.Helper()
	raw, err := reg.RawManifest(repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: h}
}

// plantReferrer pushes bundle in a referrer manifest whose subject is
// subject, and lists it in the referrers fallback tag of listedUnder, as a
// registry without the referrers API holds referrers. A hostile registry
// (or anyone who can push a tag) can list any manifest there.
func plantReferrer(t *testing.T, reg testsign.Registry, repo, listedUnder, subject string, bundle []byte) {
	t.Helper()
	listReferrers(t, reg, repo, listedUnder, subject, [][]byte{bundle}, []string{""})
}

func bundleFor(t *testing.T, reg testsign.Registry, repo, named string, k *testsign.Key) []byte {
	t.Helper()
	b, err := testsign.Bundle(testsign.Statement(reg.Host+"/"+repo, named), k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReferrerSubjectNamesAnotherDigest (THREATS REG-08 b): a referrer
// listed for the chart whose manifest's subject is another digest is not a
// signature of the chart, even though its bundle is trusted and its
// statement names the chart: it is left out, and the chart is unsigned.
// The control twin is the same referrer with the chart as its subject.
func TestReferrerSubjectNamesAnotherDigest(t *testing.T) {
	tests := []struct {
		name     string
		otherSub bool
		wantCode string
	}{
		{name: "control: subject is the chart", wantCode: chartproofv1.ReasonVerified},
		{name: "subject names another digest", otherSub: true, wantCode: chartproofv1.ReasonNoSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, false)
			k, _ := testsign.NewKey("p256")
			p, v := compile(t, reg.Host, k)
			target := pushChart(t, reg, "charts/hello", "1.0.0")
			other := pushChart(t, reg, "charts/hello", "2.0.0")
			subject := target
			if tc.otherSub {
				subject = other
			}
			plantReferrer(t, reg, "charts/hello", target, subject, bundleFor(t, reg, "charts/hello", target, k))
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			if got := res.Verdict.Code(); got != tc.wantCode || res.Digest != target {
				t.Fatalf("Check: code %s digest %s (%s); want %s, digest %s", got, res.Digest, res.Verdict.Message(), tc.wantCode, target)
			}
			if tc.wantCode != chartproofv1.ReasonVerified && res.Verdict.Allowed() {
				t.Fatal("Check: allowed, want denied")
			}
		})
	}
}

// compileKeys is compile with one authority per key and a threshold.
func compileKeys(t *testing.T, host string, threshold int, keys ...*testsign.Key) (*policy.Policy, *verify.Verifier) {
	t.Helper()
	var auths []chartproofv1.Authority
	for i, k := range keys {
		auths = append(auths, chartproofv1.Authority{Name: "ci" + itoa(i), Key: &chartproofv1.KeyAuthority{PublicKey: k.PublicPEM()}})
	}
	p, err := policy.Compile(policy.Ref{Kind: "ClusterTrustPolicy", Name: "p"}, chartproofv1.TrustPolicySpec{
		Repositories: []string{host + "/charts/**"},
		Authorities:  auths,
		Threshold:    threshold,
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

// TestLegacyAndReferrerDisagree (THREATS REG-08 e): the legacy .sig tag and
// a referrer both answer for the chart, one binding it and the other naming
// another digest. Only what binds the chart counts, whichever layout holds
// it: one binding signature allows under threshold 1 and counts once under
// threshold 2, where the disagreeing one does not make up the number. The
// controls are both layouts binding the chart.
func TestLegacyAndReferrerDisagree(t *testing.T) {
	tests := []struct {
		name           string
		threshold      int
		legacyBinds    bool
		referrerBinds  bool
		wantCode       string
		wantAcceptedIn []policy.Layout
		twoAuthorities bool
	}{
		{name: "control: both bind", threshold: 1, legacyBinds: true, referrerBinds: true, wantCode: chartproofv1.ReasonVerified,
			wantAcceptedIn: []policy.Layout{policy.LayoutCosignLegacy}},
		{name: "legacy binds, referrer names another digest", threshold: 1, legacyBinds: true, wantCode: chartproofv1.ReasonVerified,
			wantAcceptedIn: []policy.Layout{policy.LayoutCosignLegacy}},
		{name: "referrer binds, legacy names another digest", threshold: 1, referrerBinds: true, wantCode: chartproofv1.ReasonVerified,
			wantAcceptedIn: []policy.Layout{policy.LayoutSigstoreBundle}},
		{name: "neither binds", threshold: 1, wantCode: chartproofv1.ReasonSubjectMismatch},
		{name: "control: two authorities, both bind", threshold: 2, twoAuthorities: true, legacyBinds: true, referrerBinds: true, wantCode: chartproofv1.ReasonVerified,
			wantAcceptedIn: []policy.Layout{policy.LayoutCosignLegacy, policy.LayoutSigstoreBundle}},
		{name: "two authorities, the referrer names another digest", threshold: 2, twoAuthorities: true, legacyBinds: true, wantCode: chartproofv1.ReasonThresholdNotMet},
		{name: "two authorities, the legacy signature names another digest", threshold: 2, twoAuthorities: true, referrerBinds: true, wantCode: chartproofv1.ReasonThresholdNotMet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t, true)
			legacyKey, _ := testsign.NewKey("p256")
			referrerKey := legacyKey
			keys := []*testsign.Key{legacyKey}
			if tc.twoAuthorities {
				referrerKey, _ = testsign.NewKey("p256")
				keys = append(keys, referrerKey)
			}
			p, v := compileKeys(t, reg.Host, tc.threshold, keys...)
			target := pushChart(t, reg, "charts/hello", "1.0.0")
			other := pushChart(t, reg, "charts/hello", "2.0.0")
			named := func(binds bool) string {
				if binds {
					return target
				}
				return other
			}
			if err := reg.SignLegacy("charts/hello", target, named(tc.legacyBinds), legacyKey); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.AttachBundle("charts/hello", target, bundleFor(t, reg, "charts/hello", named(tc.referrerBinds), referrerKey), false); err != nil {
				t.Fatal(err)
			}
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			if got := res.Verdict.Code(); got != tc.wantCode {
				t.Fatalf("Check: code %s (%s), want %s", got, res.Verdict.Message(), tc.wantCode)
			}
			if tc.wantCode != chartproofv1.ReasonVerified {
				if res.Verdict.Allowed() {
					t.Fatal("Check: allowed, want denied")
				}
				return
			}
			var got []policy.Layout
			for _, a := range res.Verdict.Accepted {
				got = append(got, a.Layout)
			}
			if !slices.Equal(got, tc.wantAcceptedIn) {
				t.Errorf("accepted layouts %v, want %v", got, tc.wantAcceptedIn)
			}
		})
	}
}

// TestReferrerMessageSignatureRefused (issue 10, domain separation): a
// message-signature bundle (what `cosign sign-blob` makes) by the trusted
// key over the chart manifest's own bytes, attached as a referrer of the
// chart, is not a chart signature: MalformedSignature, as `cosign verify`
// refuses it. The twin, the DSSE bundle cosign makes when it signs the
// chart, by the same key, verifies.
func TestReferrerMessageSignatureRefused(t *testing.T) {
	for _, dsse := range []bool{false, true} {
		t.Run(map[bool]string{false: "message signature", true: "control: DSSE statement"}[dsse], func(t *testing.T) {
			reg := newRegistry(t, true)
			k, _ := testsign.NewKey("p256")
			digest := pushChart(t, reg, "charts/hello", "1.0.0")
			raw, err := reg.RawManifest("charts/hello", digest)
			if err != nil {
				t.Fatal(err)
			}
			b, err := testsign.MessageBundle([]byte(raw), k)
			if dsse {
				b, err = testsign.Bundle(testsign.Statement(reg.Host+"/charts/hello", digest), k)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.AttachBundle("charts/hello", digest, b, false); err != nil {
				t.Fatal(err)
			}
			p, v := compile(t, reg.Host, k)
			res := gate.Check(context.Background(), oci.NewClient(oci.Options{PlainHTTP: true}), nil, gate.Request{
				URL: "oci://" + reg.Host + "/charts/hello", Version: "1.0.0", Policy: p, Verifier: v,
			})
			want := chartproofv1.ReasonMalformedSignature
			if dsse {
				want = chartproofv1.ReasonVerified
			}
			if got := res.Verdict.Code(); got != want {
				t.Errorf("verdict %s (%s); want %s", got, res.Verdict.Message(), want)
			}
		})
	}
}
