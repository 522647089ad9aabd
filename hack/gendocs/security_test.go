package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// testRef is a test named in a row: `internal/oci.TestHostileRegistry`.
	testRef = regexp.MustCompile("`([a-z0-9_]+(?:/[a-z0-9_]+)*)\\.((?:Test|Fuzz)[A-Za-z0-9_]*)`")
	// limitConst is a cap declared in internal/limits.
	limitConst = regexp.MustCompile(`(?m)^\s+(Max[A-Za-z0-9]+)\s+=`)
)

// TestSecurityDocNamesRealTests keeps docs/security.md honest within the
// repository: every test a row names exists in the package it names, a
// covered or partial row names at least one test, and every cap of
// internal/limits is listed. That every entry of the threat catalogue has a
// row is checked by .ci/run (gendocs -check-threats), because the catalogue
// is not in the repository.
func TestSecurityDocNamesRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := threatRow.FindAllStringSubmatch(string(doc), -1)
	if len(rows) == 0 {
		t.Fatal("found no rows in docs/security.md; the row pattern is out of date")
	}
	for _, m := range rows {
		id, status, text := m[1], m[2], m[3]
		refs := testRef.FindAllStringSubmatch(text, -1)
		if (status == "covered" || status == "partial") && len(refs) == 0 {
			t.Errorf("docs/security.md: row %s is %s but names no test (`package.TestName`)", id, status)
		}
		for _, ref := range refs {
			if err := testExists(root, ref[1], ref[2]); err != nil {
				t.Errorf("docs/security.md: row %s: %v", id, err)
			}
		}
	}

	limitsSrc, err := os.ReadFile(filepath.Join(root, "internal", "limits", "limits.go"))
	if err != nil {
		t.Fatal(err)
	}
	caps := limitConst.FindAllStringSubmatch(string(limitsSrc), -1)
	if len(caps) == 0 {
		t.Fatal("found no caps in internal/limits; the pattern is out of date")
	}
	for _, c := range caps {
		if !strings.Contains(string(doc), "| `"+c[1]+"` |") {
			t.Errorf("docs/security.md: cap %s of internal/limits is not in the table of caps", c[1])
		}
	}
}

// TestCheckThreatRows: the check .ci/run runs against the catalogue finds a
// missing row, a row for no entry and a doubled row, and passes a table
// that matches.
func TestCheckThreatRows(t *testing.T) {
	catalogue := []byte("* **REG-01 – a.** x\n* **TEN-01 – b.** y\n")
	row := func(id string) string { return "| " + id + " | t | covered | `x.TestX` |\n" }
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"matching", row("REG-01") + row("TEN-01"), nil},
		{"missing row", row("REG-01"), []string{"docs/security.md has no row for these THREATS.md entries: TEN-01"}},
		{"unknown row", row("REG-01") + row("TEN-01") + row("ZZZ-09"), []string{"docs/security.md: row ZZZ-09: no such ID in THREATS.md"}},
		{"doubled row", row("REG-01") + row("TEN-01") + row("TEN-01"), []string{"docs/security.md: 2 rows for TEN-01, want 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkThreatRows(catalogue, []byte(tc.doc))
			if !slices.Equal(got, tc.want) {
				t.Errorf("checkThreatRows() = %q; want %q", got, tc.want)
			}
		})
	}
}

// testExists reports whether a _test.go file of the package directory pkg
// (relative to root) declares func name.
func testExists(root, pkg, name string) error {
	dir := filepath.Join(root, filepath.FromSlash(pkg))
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New(pkg + "." + name + ": no test files in " + pkg)
	}
	decl := regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(name) + `\(`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if decl.Match(src) {
			return nil
		}
	}
	return errors.New(pkg + "." + name + ": no func " + name + "( in " + pkg + "/*_test.go")
}
