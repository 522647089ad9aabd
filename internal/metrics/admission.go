package metrics

import "github.com/prometheus/client_golang/prometheus"

// Outcome label values of chartproof_admission_decisions_total.
const (
	AdmissionAllowed = "allowed"
	AdmissionDenied  = "denied"
)

// Admission counts the admission webhook's decisions.
type Admission struct {
	decisions *prometheus.CounterVec
}

// NewAdmission creates and registers chartproof_admission_decisions_total.
func NewAdmission(reg prometheus.Registerer) (*Admission, error) {
	m := &Admission{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chartproof_admission_decisions_total",
		Help: "Decisions of the admission webhook, by rule, outcome (allowed, denied) and reason code (docs/reasons.md): a denial is a change refused before it landed; BreakGlass is an emergency change let through and recorded.",
	}, []string{"rule", "outcome", "reason"})}
	if err := reg.Register(m.decisions); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe counts one decision; a nil Admission counts nothing.
func (m *Admission) Observe(rule, outcome, reason string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(rule, outcome, reason).Inc()
}
