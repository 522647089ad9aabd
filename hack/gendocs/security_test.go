package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// threatID is a THREATS.md entry ID: REG-01, ARC-14, PKI-03, ...
	threatID = regexp.MustCompile(`\b[A-Z]{3}-[0-9]{2}\b`)
	// threatRow is a row of the threats table of docs/security.md.
	threatRow = regexp.MustCompile(`(?m)^\| ([A-Z]{3}-[0-9]{2}) \|[^|\n]*\| (covered|partial|waits|n/a|gap) \|(.*)\|$`)
	// testRef is a test named in a row: `internal/oci.TestHostileRegistry`.
	testRef = regexp.MustCompile("`([a-z0-9_]+(?:/[a-z0-9_]+)*)\\.((?:Test|Fuzz)[A-Za-z0-9_]*)`")
	// limitConst is a cap declared in internal/limits.
	limitConst = regexp.MustCompile(`(?m)^\s+(Max[A-Za-z0-9]+)\s+=`)
)

// TestSecurityDocCoversThreats keeps docs/security.md in step with the
// threat catalogue, the tests and the caps: every ID of ../shared/THREATS.md
// (beside the clone) has exactly one row; every row is an ID of the
// catalogue; every test a row names exists in the package it names; a
// covered or partial row names at least one test; and every cap of
// internal/limits is listed.
func TestSecurityDocCoversThreats(t *testing.T) {
	root := filepath.Join("..", "..")
	threatsPath := filepath.Join(root, "..", "shared", "THREATS.md")
	threats, err := os.ReadFile(threatsPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: the threat catalogue lives in shared/THREATS.md beside the clone (CI checks it out at ../shared); without it docs/security.md cannot be checked", threatsPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	for _, id := range threatID.FindAllString(string(threats), -1) {
		want[id] = true
	}
	if len(want) == 0 {
		t.Fatalf("found no IDs in %s; the ID pattern is out of date", threatsPath)
	}

	rows := map[string]int{}
	for _, m := range threatRow.FindAllStringSubmatch(string(doc), -1) {
		id, status, text := m[1], m[2], m[3]
		rows[id]++
		if !want[id] {
			t.Errorf("docs/security.md: row %s: no such ID in THREATS.md", id)
		}
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
	var missing []string
	for id := range want {
		switch rows[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			t.Errorf("docs/security.md: %d rows for %s, want 1", rows[id], id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("docs/security.md has no row for these THREATS.md entries: %s", strings.Join(missing, ", "))
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
