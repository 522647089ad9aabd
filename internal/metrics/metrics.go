// Package metrics defines chartproof's Prometheus metrics. The collectors
// are registered on a registry the caller passes in: the manager's, beside
// controller-runtime's own metrics.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chartproof/chartproof/internal/policy"
)

// Result label values of chartproof_verifications_total.
const (
	ResultAllowed      = "allowed"
	ResultDenied       = "denied"
	ResultInconclusive = "inconclusive"
	ResultAudited      = "audited"
)

// Verifications counts and times verifications.
type Verifications struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewVerifications creates the collectors and registers them on reg.
func NewVerifications(reg prometheus.Registerer) (*Verifications, error) {
	m := &Verifications{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chartproof_verifications_total",
			Help: "Verifications of a chart digest against a trust policy, by result (allowed, denied, inconclusive, audited) and reason code.",
		}, []string{"result", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chartproof_verification_duration_seconds",
			Help:    "Time to resolve, collect and judge the signatures of one chart digest, registry round trips included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, c := range []prometheus.Collector{m.total, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records one verdict and how long it took.
func (m *Verifications) Observe(v policy.Verdict, took time.Duration) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(Result(v), v.Code()).Inc()
	m.duration.Observe(took.Seconds())
}

// Result is the result label of a verdict.
func Result(v policy.Verdict) string {
	switch {
	case v.Passed():
		return ResultAllowed
	case v.Audited():
		return ResultAudited
	case v.Inconclusive:
		return ResultInconclusive
	default:
		return ResultDenied
	}
}

// NewRecordsTampered creates and registers chartproof_release_records_tampered_total:
// Helm release records found not to be the ones chartproof wrote.
func NewRecordsTampered(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chartproof_release_records_tampered_total",
		Help: "Helm release records chartproof relies on (the deployed revision it installed) found rewritten or replaced; nothing in them was applied or used to delete.",
	})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Outcome label values of chartproof_drift_total.
const (
	DriftCorrected = "corrected"
	DriftReported  = "reported"
	DriftConflict  = "conflict"
	DriftFailed    = "failed"
)

// Drift counts the drifted objects found and times how fast they were found
// and corrected.
type Drift struct {
	total            *prometheus.CounterVec
	detect, corrects prometheus.Histogram
}

// NewDrift creates the collectors and registers them on reg.
func NewDrift(reg prometheus.Registerer) (*Drift, error) {
	buckets := []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900}
	m := &Drift{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chartproof_drift_total",
			Help: "Objects a release deployed found changed in the cluster, by kind and outcome (corrected, reported in Warn mode, conflict with another writer, failed).",
		}, []string{"kind", "outcome"}),
		detect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chartproof_drift_detect_seconds",
			Help:    "Time from the watch event of a change to an object a release deployed to the drift being found (mean time to detect).",
			Buckets: buckets,
		}),
		corrects: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chartproof_drift_correct_seconds",
			Help:    "Time from the watch event of a change to an object a release deployed to the drift being corrected (mean time to repair).",
			Buckets: buckets,
		}),
	}
	for _, c := range []prometheus.Collector{m.total, m.detect, m.corrects} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Found counts one drifted object of kind with its outcome.
func (m *Drift) Found(kind, outcome string) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(kind, outcome).Inc()
}

// Detected records the time from a watch event to the drift found.
func (m *Drift) Detected(took time.Duration) {
	if m == nil {
		return
	}
	m.detect.Observe(took.Seconds())
}

// Corrected records the time from a watch event to the drift corrected.
func (m *Drift) Corrected(took time.Duration) {
	if m == nil {
		return
	}
	m.corrects.Observe(took.Seconds())
}

// Revocation measures how fast a change of trust reaches what is installed:
// how many installed releases do not verify now, and the time from a trust
// change being observed to an installed release found no longer verifying
// (time to revoke).
type Revocation struct {
	unverified   prometheus.Gauge
	timeToRevoke prometheus.Histogram
}

// NewRevocation creates the collectors and registers them on reg.
func NewRevocation(reg prometheus.Registerer) (*Revocation, error) {
	m := &Revocation{
		unverified: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chartproof_installed_unverified_releases",
			Help: "Installed releases whose installed chart does not verify now (a revoked signer, a denied digest, a key removed, an Audit-mode install).",
		}),
		timeToRevoke: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chartproof_time_to_revoke_seconds",
			Help:    "Time from a change of trust being observed (a policy, a Secret or ConfigMap it reads, a namespace's labels) to an installed release that verified found no longer verifying; 0 when a reconcile found it before the change's watch event arrived.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900},
		}),
	}
	for _, c := range []prometheus.Collector{m.unverified, m.timeToRevoke} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetUnverified sets how many installed releases do not verify now.
func (m *Revocation) SetUnverified(n int) {
	if m == nil {
		return
	}
	m.unverified.Set(float64(n))
}

// Revoked records the time from a trust change to a release found no
// longer verifying.
func (m *Revocation) Revoked(took time.Duration) {
	if m == nil {
		return
	}
	m.timeToRevoke.Observe(took.Seconds())
}

// TUF reports the TUF repositories that policies' trusted roots are read
// from (trustedRoot.tuf): when the metadata vouching for each one's trusted
// root expires, so an air-gapped copy is renewed before releases lose it,
// and the reads that failed, by why.
type TUF struct {
	expiry   *prometheus.GaugeVec
	failures *prometheus.CounterVec
}

// NewTUF creates the collectors and registers them on reg.
func NewTUF(reg prometheus.Registerer) (*TUF, error) {
	m := &TUF{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chartproof_tuf_metadata_expiry_timestamp_seconds",
			Help: "When the TUF metadata (the earliest of root, timestamp, snapshot and targets) vouching for a repository's last verified trusted root expires, in seconds since the epoch; past it the trusted root is refused (TrustedRootRefused).",
		}, []string{"repository"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chartproof_tuf_read_failures_total",
			Help: "Reads of a TUF repository that failed: reason unavailable (could not be read) or refused (did not verify: expired, rolled back, under threshold, a target of the wrong hash).",
		}, []string{"repository", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.expiry, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Verified records a verified read of repository whose metadata expires at
// expires.
func (m *TUF) Verified(repository string, expires time.Time) {
	if m == nil {
		return
	}
	m.expiry.WithLabelValues(repository).Set(float64(expires.Unix()))
}

// Failed records a failed read of repository: reason is "unavailable" or
// "refused".
func (m *TUF) Failed(repository, reason string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(repository, reason).Inc()
}
