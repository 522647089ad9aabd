package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// Floor is the newest chart a release verified and installed: it does not
// move to an older version unless it allows a downgrade.
type Floor struct {
	Version, Digest string
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
		if floor, err := semver.NewVersion(f.Version); err == nil && v.LessThan(floor) {
			return &Reason{
				Code: chartproofv1.ReasonDowngradeRefused,
				Message: fmt.Sprintf("chart version %s (%s) is older than %s (%s), the newest this release verified and installed; set spec.allowDowngrade to roll back on purpose",
					version, ev.Digest, f.Version, f.Digest),
				Expected: ">= " + f.Version,
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
