package policy_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/policy"
)

// TestEvaluateFreshness (issue 12, item 5; THREATS FRS-01 to FRS-03): a
// minimum chart version and a release's floor refuse older charts whatever
// signs them, in Audit mode too; a maximum signature age refuses old
// signatures. Each refusal beside its control.
func TestEvaluateFreshness(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	withFreshness := func(mode chartproofv1.Mode, f chartproofv1.Freshness) chartproofv1.TrustPolicySpec {
		spec := keySpec(1, mode, "alice")
		spec.Freshness = &f
		return spec
	}
	minVersion := chartproofv1.Freshness{MinChartVersion: "1.1.0"}
	maxAge := chartproofv1.Freshness{MaxSignatureAge: &metav1.Duration{Duration: time.Hour}}
	floor := &chartproofv1.ChartRecord{ChartVersion: "1.2.0", Digest: digestB}
	signedAgo := func(d time.Duration) policy.Signature {
		s := signedBy("alice", aliceID, digestA)
		if d >= 0 {
			s.SignedAt = now.Add(-d)
		}
		return s
	}
	tests := []struct {
		name      string
		spec      chartproofv1.TrustPolicySpec
		ev        policy.Evidence
		wantCode  string
		wantAllow bool
	}{
		{name: "control: at the minimum version", spec: withFreshness("", minVersion), ev: policy.Evidence{Tag: "1.1.0"},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "below the minimum version (FRS-01)", spec: withFreshness("", minVersion), ev: policy.Evidence{Tag: "1.0.0"},
			wantCode: chartproofv1.ReasonChartVersionTooOld},
		{name: "below the minimum version, Audit mode", spec: withFreshness(chartproofv1.ModeAudit, minVersion), ev: policy.Evidence{Tag: "1.0.0"},
			wantCode: chartproofv1.ReasonChartVersionTooOld},
		{name: "below the minimum version by Chart.yaml", spec: withFreshness("", minVersion),
			ev: policy.Evidence{Chart: &policy.ChartMeta{Name: "app", Version: "1.0.9"}}, wantCode: chartproofv1.ReasonChartVersionTooOld},
		{name: "control: a pre-release of a newer version", spec: withFreshness("", minVersion), ev: policy.Evidence{Tag: "1.2.0-rc.1"},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "not a semantic version", spec: withFreshness("", minVersion), ev: policy.Evidence{Tag: "latest"},
			wantCode: chartproofv1.ReasonChartVersionTooOld},
		{name: "control: version not known yet (a digest, archive unread)", spec: withFreshness("", minVersion),
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "control: the floor's version", spec: keySpec(1, "", "alice"), ev: policy.Evidence{Tag: "1.2.0", Floor: floor},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "control: newer than the floor", spec: keySpec(1, "", "alice"), ev: policy.Evidence{Tag: "1.3.0", Floor: floor},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "older than the floor (FRS-01)", spec: keySpec(1, "", "alice"), ev: policy.Evidence{Tag: "1.1.0", Floor: floor},
			wantCode: chartproofv1.ReasonDowngradeRefused},
		{name: "older than the floor, Audit mode", spec: keySpec(1, chartproofv1.ModeAudit, "alice"), ev: policy.Evidence{Tag: "1.1.0", Floor: floor},
			wantCode: chartproofv1.ReasonDowngradeRefused},
		{name: "control: older than the floor, downgrade allowed", spec: keySpec(1, "", "alice"),
			ev: policy.Evidence{Tag: "1.1.0", Floor: floor, AllowDowngrade: true}, wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "control: signed within maxSignatureAge", spec: withFreshness("", maxAge), ev: policy.Evidence{Signatures: []policy.Signature{signedAgo(30 * time.Minute)}},
			wantCode: chartproofv1.ReasonVerified, wantAllow: true},
		{name: "signed before maxSignatureAge (FRS-02)", spec: withFreshness("", maxAge), ev: policy.Evidence{Signatures: []policy.Signature{signedAgo(2 * time.Hour)}},
			wantCode: chartproofv1.ReasonSignatureTooOld},
		{name: "no verified signing time under maxSignatureAge", spec: withFreshness("", maxAge), ev: policy.Evidence{Signatures: []policy.Signature{signedAgo(-1)}},
			wantCode: chartproofv1.ReasonSignatureTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := compile(t, tc.spec)
			ev := tc.ev
			ev.Repository, ev.Digest, ev.Now = repo, digestA, now
			if ev.Signatures == nil {
				ev.Signatures = []policy.Signature{signedBy("alice", aliceID, digestA)}
			}
			v := policy.Evaluate(p, ev)
			if v.Code() != tc.wantCode || v.Allowed() != tc.wantAllow {
				t.Fatalf("verdict %s (allowed %v): %s; want %s (allowed %v)", v.Code(), v.Allowed(), v.Message(), tc.wantCode, tc.wantAllow)
			}
		})
	}
}

// TestCompileFreshness: a minimum version that is not a semantic version,
// or a maximum age that is not positive, makes the policy invalid.
func TestCompileFreshness(t *testing.T) {
	for name, f := range map[string]chartproofv1.Freshness{
		"minChartVersion not semantic": {MinChartVersion: "one"},
		"maxSignatureAge zero":         {MaxSignatureAge: &metav1.Duration{}},
	} {
		spec := keySpec(1, "", "alice")
		spec.Freshness = &f
		if _, err := policy.Compile(policy.Ref{Kind: "TrustPolicy", Namespace: "ns", Name: "p"}, spec, nil); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}
