package alerts

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/chartproof/chartproof/internal/metrics"
)

// dashboardFile is the Grafana dashboard, relative to the repository.
var dashboardFile = filepath.Join("config", "grafana", "chartproof.json")

// grafanaVariables are what the dashboard's variables stand for when its
// queries are checked: $__rate_interval is Grafana's own, $namespace the
// dashboard's (All is ".*").
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*")

// otherMetrics are the metrics the dashboard shows that chartproof does not
// define: controller-runtime's, which the manager serves beside its own.
var otherMetrics = []string{"controller_runtime_reconcile_total", "workqueue_depth"}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

// dashboardQueries returns the PromQL of every panel of the dashboard by
// "panel <id> <refId> (<title>)", and the template variables' queries.
func dashboardQueries(t *testing.T) (queries map[string]string, variables []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: uid %q title %q, want both", dashboardFile, d.UID, d.Title)
	}
	queries = map[string]string{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", dashboardFile, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %d: title %q, %d queries; want a title and a query", dashboardFile, p.ID, p.Title, len(p.Targets))
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" || q.RefID == "" {
					t.Errorf("%s: panel %d %q: a query without expr or refId", dashboardFile, p.ID, p.Title)
				}
				queries[fmt.Sprintf("panel %d %s (%s)", p.ID, q.RefID, p.Title)] = q.Expr
				// A legend's {{label}} must be one the query keeps: one it
				// groups by, when it aggregates.
				if kept := groupedBy(q.Expr); len(kept) > 0 {
					for _, m := range legendLabel.FindAllStringSubmatch(q.LegendFormat, -1) {
						if !slices.Contains(kept, m[1]) {
							t.Errorf("%s: panel %d %q: legend {{%s}}, but the query keeps only %q", dashboardFile, p.ID, p.Title, m[1], kept)
						}
					}
				}
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			s, _ := q["query"].(string)
			variables = append(variables, s)
		}
	}
	return queries, variables
}

// TestDashboardQueries: every query of config/grafana's dashboard is valid
// PromQL (promtool check rules, each a recording rule, with Grafana's
// variables replaced by what they stand for), names only metrics chartproof
// exports or controller-runtime's and only their labels (in matchers, in
// by and without, in legends), and every metric chartproof exports is on
// the dashboard; config/grafana makes it a ConfigMap Grafana's sidecar
// loads.
func TestDashboardQueries(t *testing.T) {
	promtool := os.Getenv("CHARTPROOF_PROMTOOL")
	if promtool == "" {
		t.Fatal("CHARTPROOF_PROMTOOL is not set: run `make test`, or set it to $(hack/tools.sh path promtool)")
	}
	queries, variables := dashboardQueries(t)
	if len(queries) == 0 {
		t.Fatalf("%s has no query", dashboardFile)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range queries {
			if !yield(k) {
				return
			}
		}
	})
	var rules []map[string]string
	for i, name := range names {
		expr := grafanaVariables.Replace(queries[name])
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable the check does not know: %s", name, queries[name])
		}
		rules = append(rules, map[string]string{"record": fmt.Sprintf("chartproof_dashboard:query_%d", i), "expr": expr})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		// promtool names a failing rule by its index: map it back.
		for i, name := range names {
			out = []byte(strings.ReplaceAll(string(out), fmt.Sprintf("chartproof_dashboard:query_%d\"", i), name+"\""))
		}
		t.Fatalf("promtool check rules: %v\n%s\nqueries: %q", err, out, names)
	}

	exported := exportedMetrics(t)
	shown := map[string]bool{}
	for name, expr := range queries {
		for _, m := range metricNames(expr) {
			shown[m] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				shown[strings.TrimSuffix(m, suffix)] = true // a histogram's series
			}
			if !exported[m] && !slices.Contains(otherMetrics, m) {
				t.Errorf("%s: %s is not a metric chartproof exports (docs/metrics.md)", name, m)
			}
		}
	}
	// promtool knows no label names: a misspelt one in by (...) or a
	// matcher would parse and show nothing.
	labels := exportedLabels(t)
	for name, expr := range queries {
		for _, l := range labelNames(expr) {
			if !labels[l] {
				t.Errorf("%s: label %q is not a label of chartproof's metrics (docs/metrics.md) or controller-runtime's", name, l)
			}
		}
	}
	for _, v := range variables {
		for _, m := range metricNames(v) {
			if !exported[m] {
				t.Errorf("variable query %q: %s is not a metric chartproof exports", v, m)
			}
		}
	}
	fams, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !shown[f.Name] {
			t.Errorf("%s is not on the dashboard: every metric in docs/metrics.md has a panel", f.Name)
		}
	}

	// config/grafana: the dashboard, byte for byte, in a labelled ConfigMap.
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "grafana"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range resources.Resources() {
		if r.GetKind() == "ConfigMap" && r.GetLabels()["grafana_dashboard"] == "1" && r.GetDataMap()["chartproof.json"] == string(want) {
			found = true
		}
	}
	if !found {
		t.Error("config/grafana builds no ConfigMap labelled grafana_dashboard=1 holding chartproof.json")
	}
}

// TestAlertMetricsExported: every metric the alerts name is one chartproof
// exports, so a renamed metric cannot leave an alert that never fires.
func TestAlertMetricsExported(t *testing.T) {
	exported := exportedMetrics(t)
	data, err := yaml.Marshal(prometheusRule(t))
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(data, &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: names no chartproof metric", r.Alert)
			}
			for _, m := range names {
				if !exported[m] {
					t.Errorf("%s: %s is not a metric chartproof exports (docs/metrics.md)", r.Alert, m)
				}
			}
		}
	}
}

// exportedMetrics returns the series names chartproof's metrics have: each
// family's name, and a histogram's _bucket, _sum and _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	fams, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.Name] = true
		if f.Type == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f.Name+s] = true
			}
		}
	}
	return out
}

// metricName matches the names of the metrics chartproof exports and of
// controller-runtime's, in PromQL or a variable's query.
var metricName = regexp.MustCompile(`\b(chartproof_[a-z0-9_]+|controller_runtime_[a-z0-9_]+|workqueue_[a-z0-9_]+)\b`)

// metricNames returns the metric names expr mentions.
func metricNames(expr string) []string {
	var out []string
	for _, m := range metricName.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// otherLabels are the labels of otherMetrics the dashboard uses.
var otherLabels = []string{"controller", "result", "name"}

// exportedLabels returns every label of chartproof's metrics, a
// histogram's le, and otherLabels.
func exportedLabels(t *testing.T) map[string]bool {
	t.Helper()
	fams, err := metrics.Families()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{"le": true}
	for _, f := range fams {
		for _, l := range f.Labels {
			out[l] = true
		}
	}
	for _, l := range otherLabels {
		out[l] = true
	}
	return out
}

var (
	// grouping matches by (...) and without (...).
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	// matcher matches a label matcher: name="...", name=~"...", ...
	matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	// legendLabel matches {{label}} in a legend.
	legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// groupedBy returns the labels of expr's by (...) and without (...)
// clauses.
func groupedBy(expr string) []string {
	var out []string
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// labelNames returns the label names expr groups by or matches on.
func labelNames(expr string) []string {
	out := groupedBy(expr)
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	return out
}
