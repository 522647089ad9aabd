package metrics

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Family is a metric chartproof exports: docs/metrics.md lists them
// (hack/gendocs writes it from Families).
type Family struct {
	Name, Type, Help string
	Labels           []string
}

// Families returns every metric this package's constructors register, in
// the order they register them. It builds each on a registry of its own.
func Families() ([]Family, error) {
	rec := &recorder{Registry: prometheus.NewRegistry()}
	if _, err := NewVerifications(rec); err != nil {
		return nil, err
	}
	if _, err := NewRecordsTampered(rec); err != nil {
		return nil, err
	}
	if _, err := NewDrift(rec); err != nil {
		return nil, err
	}
	if _, err := NewRevocation(rec); err != nil {
		return nil, err
	}
	if _, err := NewReleases(rec); err != nil {
		return nil, err
	}
	if _, err := NewTUF(rec); err != nil {
		return nil, err
	}
	if _, err := NewRegistry(rec); err != nil {
		return nil, err
	}
	if _, err := NewCache(rec); err != nil {
		return nil, err
	}
	if _, err := NewAdmission(rec); err != nil {
		return nil, err
	}
	var out []Family
	for _, c := range rec.collectors {
		f, err := familyOf(c)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// recorder is a registry that also keeps what was registered, in order.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// descString is how client_golang prints a Desc (desc.go); the package
// offers no other way to read a Desc's name, help and labels.
var descString = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), unit: "(?:[^"\\]|\\.)*", constLabels: \{\}, variableLabels: \{([^}]*)\}\}$`)

// familyOf describes c, a collector of exactly one metric.
func familyOf(c prometheus.Collector) (Family, error) {
	var f Family
	switch c.(type) {
	case *prometheus.GaugeVec, prometheus.Gauge: // before Counter: a Gauge has Inc and Add too
		f.Type = "gauge"
	case *prometheus.CounterVec, prometheus.Counter:
		f.Type = "counter"
	case *prometheus.HistogramVec, prometheus.Histogram:
		f.Type = "histogram"
	default:
		return f, fmt.Errorf("metrics: collector %T: unknown type", c)
	}
	descs := make(chan *prometheus.Desc, 4)
	c.Describe(descs)
	close(descs)
	var all []*prometheus.Desc
	for d := range descs {
		all = append(all, d)
	}
	if len(all) != 1 {
		return f, fmt.Errorf("metrics: collector %T describes %d metrics, want 1", c, len(all))
	}
	m := descString.FindStringSubmatch(all[0].String())
	if m == nil {
		return f, fmt.Errorf("metrics: cannot read %s (has client_golang's Desc.String changed?)", all[0])
	}
	var err error
	if f.Name, err = strconv.Unquote(m[1]); err != nil {
		return f, err
	}
	if f.Help, err = strconv.Unquote(m[2]); err != nil {
		return f, err
	}
	if m[3] != "" {
		f.Labels = strings.Split(m[3], ",")
	}
	return f, nil
}
