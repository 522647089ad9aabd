package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome label values of chartproof_admission_decisions_total.
const (
	AdmissionAllowed = "allowed"
	AdmissionDenied  = "denied"
)

// Admission counts the admission webhook's decisions and tells when its
// certificates expire.
type Admission struct {
	decisions *prometheus.CounterVec
	expiry    *prometheus.GaugeVec
}

// Certificate label values of chartproof_webhook_certificate_expiry_timestamp_seconds.
const (
	CertificateServing = "serving"
	CertificateCA      = "ca"
)

// NewAdmission creates and registers chartproof_admission_decisions_total
// and chartproof_webhook_certificate_expiry_timestamp_seconds.
func NewAdmission(reg prometheus.Registerer) (*Admission, error) {
	m := &Admission{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chartproof_admission_decisions_total",
			Help: "Decisions of the admission webhook, by rule, outcome (allowed, denied) and reason code (docs/reasons.md): a denial is a change refused before it landed; BreakGlass is an emergency change let through and recorded.",
		}, []string{"rule", "outcome", "reason"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chartproof_webhook_certificate_expiry_timestamp_seconds",
			Help: "When the certificate the admission webhook serves (certificate=serving) and the CA that signed the newest (certificate=ca) expire, as Unix time; set once the manager serves one it made itself. Absent: this replica serves no certificate of its own.",
		}, []string{"certificate"}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.expiry} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// CertificateExpires records when a certificate expires; a nil Admission
// records nothing.
func (m *Admission) CertificateExpires(certificate string, notAfter time.Time) {
	if m == nil {
		return
	}
	m.expiry.WithLabelValues(certificate).Set(float64(notAfter.Unix()))
}

// Observe counts one decision; a nil Admission counts nothing.
func (m *Admission) Observe(rule, outcome, reason string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(rule, outcome, reason).Inc()
}
