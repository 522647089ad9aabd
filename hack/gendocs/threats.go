package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var (
	// threatID is a THREATS.md entry ID: REG-01, ARC-14, PKI-03, ...
	threatID = regexp.MustCompile(`\b[A-Z]{3}-[0-9]{2}\b`)
	// threatRow is a row of the threats table of docs/security.md.
	threatRow = regexp.MustCompile(`(?m)^\| ([A-Z]{3}-[0-9]{2}) \|[^|\n]*\| (covered|partial|waits|n/a|gap) \|(.*)\|$`)
)

// checkThreatRows compares the threats table of docs/security.md (doc) with
// the threat catalogue (threats, the text of THREATS.md): every ID of the
// catalogue has exactly one row, and every row is an ID of the catalogue.
// The catalogue lives outside the repository (../shared/THREATS.md), so
// `make test` cannot read it; .ci/run runs this check with
// `go run ./hack/gendocs -check-threats ../shared/THREATS.md`.
func checkThreatRows(threats, doc []byte) []string {
	want := map[string]bool{}
	for _, id := range threatID.FindAllString(string(threats), -1) {
		want[id] = true
	}
	if len(want) == 0 {
		return []string{"found no IDs in the threat catalogue; the ID pattern is out of date"}
	}
	var problems []string
	rows := map[string]int{}
	for _, m := range threatRow.FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]]++
		if !want[m[1]] {
			problems = append(problems, fmt.Sprintf("docs/security.md: row %s: no such ID in THREATS.md", m[1]))
		}
	}
	var missing []string
	for id := range want {
		switch rows[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("docs/security.md: %d rows for %s, want 1", rows[id], id))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		problems = append(problems, "docs/security.md has no row for these THREATS.md entries: "+strings.Join(missing, ", "))
	}
	slices.Sort(problems)
	return problems
}
