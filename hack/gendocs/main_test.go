package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// TestReasonsDocIsCurrent fails when docs/reasons.md is not what the code's
// table renders: run `make generate`.
func TestReasonsDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(Render()) {
		t.Fatal("docs/reasons.md is stale: run `make generate`")
	}
}

// TestMetricsDocIsCurrent fails when docs/metrics.md does not list exactly
// the metrics internal/metrics registers: run `make generate`.
func TestMetricsDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := RenderMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/metrics.md is stale: run `make generate`")
	}
}

// TestEveryReasonCodeIsTested fails when a reason code declared in
// api/v1alpha1 is documented in no table entry, or asserted by no test: each
// code needs a test that expects it (a negative test for a denial).
func TestEveryReasonCodeIsTested(t *testing.T) {
	root := "../.."
	src, err := os.ReadFile(filepath.Join(root, "api/v1alpha1/conditions.go"))
	if err != nil {
		t.Fatal(err)
	}
	declared := regexp.MustCompile(`(?m)^\s+(Reason[A-Z]\w*)\s+=\s+"`).FindAllStringSubmatch(string(src), -1)
	if len(declared) == 0 {
		t.Fatal("found no reason constants; the pattern is out of date")
	}
	documented := map[string]bool{}
	for _, r := range chartproofv1.Reasons {
		documented[r.Code] = true
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "*_test.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var tests strings.Builder
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "hack/gendocs/") {
			continue // this file names every code
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		tests.Write(b)
	}
	all := tests.String()
	for _, m := range declared {
		ident := m[1]
		code := strings.TrimPrefix(ident, "Reason")
		if !documented[code] {
			t.Errorf("%s is not in chartproofv1.Reasons (docs/reasons.md)", ident)
		}
		if !regexp.MustCompile(`\b` + ident + `\b`).MatchString(all) {
			t.Errorf("no test asserts %s (%q): add a test that expects it", ident, code)
		}
	}
}
