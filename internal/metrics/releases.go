package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Releases reports each VerifiedHelmRelease by namespace and name, so that
// an alert can name the release: the status of each of its conditions, and
// whether the chart it installed verifies now. A release has one series per
// condition type and at most one of installed verification; a deleted
// release has none.
type Releases struct {
	condition *prometheus.GaugeVec
	verified  *prometheus.GaugeVec

	mu   sync.Mutex
	seen map[release]map[string]string // condition type -> status, as last set
}

type release struct{ namespace, name string }

// NewReleases creates the collectors and registers them on reg.
func NewReleases(reg prometheus.Registerer) (*Releases, error) {
	m := &Releases{
		condition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chartproof_release_condition",
			Help: "1 for the status (True, False, Unknown) each condition of a VerifiedHelmRelease has now, by namespace, name and condition type: one series per condition (Ready, Verified, Released, Healthy, Drifted, Reconciling, Stalled, ...).",
		}, []string{"namespace", "name", "type", "status"}),
		verified: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chartproof_release_installed_verified",
			Help: "1 when the chart a VerifiedHelmRelease installed verifies now, 0 when it runs a chart that does not (a revoked signer, a denied digest, a key removed, an Audit-mode install); absent while nothing is installed.",
		}, []string{"namespace", "name"}),
		seen: map[release]map[string]string{},
	}
	for _, c := range []prometheus.Collector{m.condition, m.verified} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Set records a release's conditions (type -> status) and whether what it
// installed verifies now (nil: nothing installed). A series of a status or
// type the release no longer has is removed after the new one is set, so a
// scrape never finds the release without one.
func (m *Releases) Set(namespace, name string, conditions map[string]string, installedVerified *bool) {
	if m == nil {
		return
	}
	r := release{namespace, name}
	m.mu.Lock()
	defer m.mu.Unlock()
	for typ, status := range conditions {
		m.condition.WithLabelValues(namespace, name, typ, status).Set(1)
	}
	for typ, status := range m.seen[r] {
		if conditions[typ] != status {
			m.condition.DeleteLabelValues(namespace, name, typ, status)
		}
	}
	m.seen[r] = conditions
	switch {
	case installedVerified == nil:
		m.verified.DeleteLabelValues(namespace, name)
	case *installedVerified:
		m.verified.WithLabelValues(namespace, name).Set(1)
	default:
		m.verified.WithLabelValues(namespace, name).Set(0)
	}
}

// Forget removes the series of a deleted release.
func (m *Releases) Forget(namespace, name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for typ, status := range m.seen[release{namespace, name}] {
		m.condition.DeleteLabelValues(namespace, name, typ, status)
	}
	delete(m.seen, release{namespace, name})
	m.verified.DeleteLabelValues(namespace, name)
}
