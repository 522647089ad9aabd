// Package alerts holds the tests of config/prometheus and config/grafana:
// the PrometheusRule's alerts run through `promtool test rules` (a firing and
// a silent case per alert, config/prometheus/tests), each with a severity
// and a runbook in docs/runbooks/; the Grafana dashboard's queries pass
// `promtool check rules` and name only metrics chartproof exports, every one
// of which has a panel.
package alerts
