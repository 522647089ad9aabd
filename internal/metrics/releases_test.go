package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReleases: each release has one series per condition type, with the
// status it has now, and one of installed verification while something is
// installed; a deleted release has none, and another release's stay.
func TestReleases(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewReleases(reg)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	m.Set("apps", "a", map[string]string{"Ready": "Unknown", "Reconciling": "True"}, nil)
	m.Set("apps", "b", map[string]string{"Ready": "True"}, &yes)
	m.Set("apps", "a", map[string]string{"Ready": "False", "Verified": "False"}, &no)
	want := `
# HELP chartproof_release_condition 1 for the status (True, False, Unknown) each condition of a VerifiedHelmRelease has now, by namespace, name and condition type: one series per condition (Ready, Verified, Released, Healthy, Drifted, Reconciling, Stalled, ...).
# TYPE chartproof_release_condition gauge
chartproof_release_condition{name="a",namespace="apps",status="False",type="Ready"} 1
chartproof_release_condition{name="a",namespace="apps",status="False",type="Verified"} 1
chartproof_release_condition{name="b",namespace="apps",status="True",type="Ready"} 1
# HELP chartproof_release_installed_verified 1 when the chart a VerifiedHelmRelease installed verifies now, 0 when it runs a chart that does not (a revoked signer, a denied digest, a key removed, an Audit-mode install); absent while nothing is installed.
# TYPE chartproof_release_installed_verified gauge
chartproof_release_installed_verified{name="a",namespace="apps"} 0
chartproof_release_installed_verified{name="b",namespace="apps"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	m.Forget("apps", "a")
	m.Set("apps", "b", map[string]string{"Ready": "True"}, nil)
	want = `
# HELP chartproof_release_condition 1 for the status (True, False, Unknown) each condition of a VerifiedHelmRelease has now, by namespace, name and condition type: one series per condition (Ready, Verified, Released, Healthy, Drifted, Reconciling, Stalled, ...).
# TYPE chartproof_release_condition gauge
chartproof_release_condition{name="b",namespace="apps",status="True",type="Ready"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestFamilies: every collector the constructors register is described,
// with its type and labels (docs/metrics.md is written from them).
func TestFamilies(t *testing.T) {
	fams, err := Families()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Family{}
	for _, f := range fams {
		if f.Help == "" {
			t.Errorf("%s has no help", f.Name)
		}
		got[f.Name] = f
	}
	for name, want := range map[string]struct {
		typ    string
		labels string
	}{
		"chartproof_verifications_total":           {"counter", "result,reason"},
		"chartproof_time_to_revoke_seconds":        {"histogram", ""},
		"chartproof_installed_unverified_releases": {"gauge", ""},
		"chartproof_release_condition":             {"gauge", "namespace,name,type,status"},
		"chartproof_release_installed_verified":    {"gauge", "namespace,name"},
	} {
		f, ok := got[name]
		if !ok {
			t.Errorf("%s is not described", name)
			continue
		}
		if f.Type != want.typ || strings.Join(f.Labels, ",") != want.labels {
			t.Errorf("%s: %s with labels %v; want %s with %s", name, f.Type, f.Labels, want.typ, want.labels)
		}
	}
}
