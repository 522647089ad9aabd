package controllers

import (
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestForgetUnverifiedNewest (THREATS FRS-01, FRS-03): when the newest
// chart, installed, stops verifying, the floor falls back to the highest
// other version the release installed, not to nothing: a registry cannot
// then serve an older signed chart than what ran before the rogue one. The
// control: the newest still verifies and stays the floor.
func TestForgetUnverifiedNewest(t *testing.T) {
	history := []chartproofv1.ChartRecord{{ChartVersion: "1.0.0", Digest: "d1"}, {ChartVersion: "3.0.0", Digest: "d3"}, {ChartVersion: "9.0.0", Digest: "d9"}}
	for _, tc := range []struct {
		name     string
		verified bool
		history  []chartproofv1.ChartRecord
		want     *chartproofv1.ChartRecord
	}{
		{"control: the newest still verifies", true, history, &chartproofv1.ChartRecord{ChartVersion: "9.0.0", Digest: "d9"}},
		{"the newest stopped verifying", false, history, &chartproofv1.ChartRecord{ChartVersion: "3.0.0", Digest: "d3"}},
		{"the newest stopped verifying, nothing else installed", false, history[2:], nil},
	} {
		obj := &chartproofv1.VerifiedHelmRelease{Status: chartproofv1.VerifiedHelmReleaseStatus{
			Installed: &chartproofv1.InstalledRelease{Digest: "d9", ChartVersion: "9.0.0", Verified: tc.verified},
			Newest:    &chartproofv1.ChartRecord{ChartVersion: "9.0.0", Digest: "d9"},
			History:   tc.history,
		}}
		forgetUnverifiedNewest(obj)
		got := obj.Status.Newest
		if (got == nil) != (tc.want == nil) || (got != nil && (got.ChartVersion != tc.want.ChartVersion || got.Digest != tc.want.Digest)) {
			t.Errorf("%s: newest = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
