package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	root       = "../.."
	runbookURL = "https://github.com/chartproof/chartproof/blob/main/"
)

type rule struct {
	Alert       string            `json:"alert"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// prometheusRule reads config/prometheus as kustomize builds it and returns
// its one PrometheusRule's spec.groups.
func prometheusRule(t *testing.T) []any {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	var groups []any
	for _, r := range resources.Resources() {
		if r.GetKind() != "PrometheusRule" {
			continue
		}
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := m["spec"].(map[string]any)
		if groups != nil {
			t.Fatal("config/prometheus has more than one PrometheusRule")
		}
		groups, _ = spec["groups"].([]any)
	}
	if len(groups) == 0 {
		t.Fatal("config/prometheus has no PrometheusRule with rule groups")
	}
	return groups
}

// TestAlertRules runs `promtool test rules` on config/prometheus/tests with
// the PrometheusRule's groups as its rules file (promtool reads Prometheus
// rule files, whose content is the PrometheusRule's spec).
func TestAlertRules(t *testing.T) {
	promtool := os.Getenv("CHARTPROOF_PROMTOOL")
	if promtool == "" {
		t.Fatal("CHARTPROOF_PROMTOOL is not set: run `make test`, or set it to $(hack/tools.sh path promtool)")
	}
	rules, err := yaml.Marshal(map[string]any{"groups": prometheusRule(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := filepath.Glob(filepath.Join(root, "config", "prometheus", "tests", "*.yaml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no tests in config/prometheus/tests (%v)", err)
	}
	args := []string{"test", "rules"}
	for _, f := range tests {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		copied := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(copied, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, copied)
	}
	out, err := exec.Command(promtool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestEveryAlertTested: every alert has a severity, a runbook that exists,
// and in config/prometheus/tests a case where it fires and one where it
// must not.
func TestEveryAlertTested(t *testing.T) {
	var alerts []rule
	for _, g := range prometheusRule(t) {
		data, err := yaml.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		var group struct {
			Rules []rule `json:"rules"`
		}
		if err := yaml.Unmarshal(data, &group); err != nil {
			t.Fatal(err)
		}
		alerts = append(alerts, group.Rules...)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	tests, _ := filepath.Glob(filepath.Join(root, "config", "prometheus", "tests", "*.yaml"))
	for _, f := range tests {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `json:"alertname"`
					ExpAlerts []any  `json:"exp_alerts"`
				} `json:"alert_rule_test"`
			} `json:"tests"`
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range file.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, a := range alerts {
		if a.Alert == "" {
			continue // a recording rule
		}
		if a.Labels["severity"] != "critical" && a.Labels["severity"] != "warning" {
			t.Errorf("%s: severity %q; want critical or warning", a.Alert, a.Labels["severity"])
		}
		doc, ok := strings.CutPrefix(a.Annotations["runbook_url"], runbookURL)
		if !ok {
			t.Errorf("%s: runbook_url %q is not under %s", a.Alert, a.Annotations["runbook_url"], runbookURL)
		} else if _, err := os.Stat(filepath.Join(root, doc)); err != nil {
			t.Errorf("%s: its runbook: %v", a.Alert, err)
		}
		if !firing[a.Alert] || !silent[a.Alert] {
			t.Errorf("%s: a firing case %v, a silent case %v; want both in config/prometheus/tests", a.Alert, firing[a.Alert], silent[a.Alert])
		}
	}
}
