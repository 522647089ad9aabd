package controllers

import (
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestHealthExprs: the order inProgress, failed, current; none true, or an
// expression that cannot be evaluated, is InProgress; other kinds are
// kstatus's; what does not compile, or is not a bool, is refused.
func TestHealthExprs(t *testing.T) {
	exprs, err := compileHealthExprs([]chartproofv1.HealthCheckExpr{{
		APIVersion: "example.test/v1", Kind: "Widget",
		InProgress: `has(status.phase) && status.phase == "Starting"`,
		Failed:     `has(status.phase) && status.phase in ["Broken", "Starting"]`,
		Current:    `status.phase == "Ready" && spec.size == "small"`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	widget := func(phase string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.test/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w"}, "spec": map[string]any{"size": "small"}}}
		if phase != "" {
			u.Object["status"] = map[string]any{"phase": phase}
		}
		return u
	}
	for phase, want := range map[string]status.Status{
		"Ready":    status.CurrentStatus,
		"Broken":   status.FailedStatus,
		"Starting": status.InProgressStatus, // inProgress before failed
		"Other":    status.InProgressStatus,
		"":         status.InProgressStatus, // current cannot be evaluated: no status.phase
	} {
		got, msg, err := exprs.statusOf(widget(phase))
		if err != nil || got != want {
			t.Errorf("phase %q: %s (%s), %v; want %s", phase, got, msg, err, want)
		}
	}
	// A runaway expression is stopped by the cost limit: in progress, not
	// a manager busy for minutes.
	loop, err := compileHealthExprs([]chartproofv1.HealthCheckExpr{{APIVersion: "example.test/v1", Kind: "Widget",
		Current: `spec.items.all(a, spec.items.all(b, spec.items.all(c, a + b + c >= 0)))`}})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 1000)
	for i := range items {
		items[i] = int64(i)
	}
	w := widget("")
	w.Object["spec"] = map[string]any{"items": items}
	if got, msg, err := loop.statusOf(w); err != nil || got != status.InProgressStatus || !strings.Contains(msg, "cost") {
		t.Errorf("a runaway expression: %s (%s), %v; want InProgress over the cost limit", got, msg, err)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}
	if got, _, err := exprs.statusOf(cm); err != nil || got != status.CurrentStatus {
		t.Errorf("a ConfigMap: %s, %v; want kstatus's Current", got, err)
	}
	for name, tc := range map[string]struct {
		e    chartproofv1.HealthCheckExpr
		want string
	}{
		"does not compile": {chartproofv1.HealthCheckExpr{APIVersion: "v1", Kind: "X", Current: "status.phase =="}, "[0].current"},
		"not a bool":       {chartproofv1.HealthCheckExpr{APIVersion: "v1", Kind: "X", Current: "true", Failed: `"yes"`}, "[0].failed: a string"},
	} {
		if _, err := compileHealthExprs([]chartproofv1.HealthCheckExpr{tc.e}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error naming %q", name, err, tc.want)
		}
	}
}
