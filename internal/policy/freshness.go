package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// RaiseFloor is a release's floor (status.newest) once it verified and
// installed chart: chart when it is not older than floor, or when the
// release allows a downgrade (the floor then follows it down); floor
// otherwise. A version that is not semantic never lowers it.
func RaiseFloor(floor *chartproofv1.ChartRecord, chart chartproofv1.ChartRecord, allowDowngrade bool) *chartproofv1.ChartRecord {
	if floor != nil && !allowDowngrade {
		v, err := semver.NewVersion(chart.ChartVersion)
		f, ferr := semver.NewVersion(floor.ChartVersion)
		if err != nil || (ferr == nil && v.LessThan(f)) {
			return floor
		}
	}
	return &chart
}

// FallbackFloor is a release's floor once the chart of digest, its newest,
// stopped verifying: the highest other version it installed (history), so
// what ran before may still not be undercut, while what a revoked signer
// pushed ahead holds nothing back (THREATS FRS-03); nil when none. The
// floor is a version and a digest; the rest of the history record is not
// kept in it.
func FallbackFloor(history []chartproofv1.ChartRecord, digest string) *chartproofv1.ChartRecord {
	var (
		best *semver.Version
		out  *chartproofv1.ChartRecord
	)
	for _, c := range history {
		v, err := semver.NewVersion(c.ChartVersion)
		if c.Digest == digest || err != nil || (best != nil && !v.GreaterThan(best)) {
			continue
		}
		best, out = v, &chartproofv1.ChartRecord{ChartVersion: c.ChartVersion, Digest: c.Digest}
	}
	return out
}

// compileFreshness checks a policy's freshness bounds.
func compileFreshness(p *Policy, f *chartproofv1.Freshness) error {
	if f == nil {
		return nil
	}
	if f.MaxSignatureAge != nil {
		if f.MaxSignatureAge.Duration <= 0 {
			return fmt.Errorf("freshness.maxSignatureAge %s is not positive", f.MaxSignatureAge.Duration)
		}
		p.MaxSignatureAge = f.MaxSignatureAge.Duration
	}
	if f.MinChartVersion != "" {
		v, err := semver.StrictNewVersion(strings.TrimPrefix(f.MinChartVersion, "v"))
		if err != nil {
			return fmt.Errorf("freshness.minChartVersion %q is not a semantic version", f.MinChartVersion)
		}
		p.MinChartVersion = v
	}
	return nil
}

// chartVersion is the version of the chart being decided: Chart.yaml's
// once the archive was read, else the tag the version resolved through
// (as Helm pushes it, '+' written '_'); "" when neither is known yet (a
// digest, before the archive is read).
func (ev Evidence) chartVersion() string {
	if ev.Chart != nil {
		return ev.Chart.Version
	}
	return strings.ReplaceAll(ev.Tag, "_", "+")
}

// judgeFreshness refuses a chart below the policy's minimum version, or
// older than the release's floor: facts about the chart, not its
// signatures, so Audit mode does not waive them. A version not known yet is
// judged when the archive is read, before any install.
func (p *Policy) judgeFreshness(ev Evidence) *Reason {
	version := ev.chartVersion()
	if version == "" {
		return nil
	}
	v, verr := semver.NewVersion(version)
	if p.MinChartVersion != nil && (verr != nil || v.LessThan(p.MinChartVersion)) {
		return &Reason{
			Code:     chartproofv1.ReasonChartVersionTooOld,
			Message:  fmt.Sprintf("chart version %q of %s is below %s's minimum %s, or not a semantic version", version, ev.Digest, p.Ref, p.MinChartVersion),
			Expected: ">= " + p.MinChartVersion.String(),
			Found:    version,
		}
	}
	if f := ev.Floor; f != nil && !ev.AllowDowngrade && verr == nil {
		if floor, err := semver.NewVersion(f.ChartVersion); err == nil && v.LessThan(floor) {
			return &Reason{
				Code: chartproofv1.ReasonDowngradeRefused,
				Message: fmt.Sprintf("chart version %s (%s) is older than %s (%s), the newest this release verified and installed; set spec.allowDowngrade to roll back on purpose",
					version, ev.Digest, f.ChartVersion, f.Digest),
				Expected: ">= " + f.ChartVersion,
				Found:    version,
			}
		}
	}
	return nil
}

// tooOld says why a signature's age disqualifies it under maxSignatureAge,
// or "".
func (p *Policy) tooOld(s Signature, now time.Time) string {
	switch {
	case p.MaxSignatureAge == 0:
		return ""
	case s.SignedAt.IsZero():
		return "no verified signing time"
	case now.Sub(s.SignedAt) > p.MaxSignatureAge:
		return fmt.Sprintf("signed %s, %s ago", s.SignedAt.UTC().Format(time.RFC3339), now.Sub(s.SignedAt).Round(time.Second))
	}
	return ""
}
