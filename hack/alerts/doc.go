// Package alerts holds the tests of config/prometheus: its PrometheusRule's
// alerts run through `promtool test rules` (a firing and a silent case per
// alert, config/prometheus/tests), each with a severity and a runbook in
// docs/runbooks/.
package alerts
