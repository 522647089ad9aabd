package controllers

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	helmchart "helm.sh/helm/v3/pkg/chart"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// helmFailure summarises a failed Helm action for the conditions and events
// that the release's authors read. A Helm error can carry what the release
// read or rendered: a template's `fail` of a `lookup` (a Secret, whole), an
// object name built from a value, the API server echoing a field. So the
// summary holds only what chartproof itself knows: its own errors, the
// reason and code of an API error and the kind it was about, or which of
// the verified chart's templates did not render (templates: the chart's
// template paths, as templatePaths lists them; nil when nothing was
// rendered). It is bounded in length; the whole error goes to the manager's
// log only.
func helmFailure(err error, templates map[string]bool) string {
	const seeLog = "; the manager's log has the whole error"
	switch {
	case errors.Is(err, identity.ErrNoServiceAccount):
		return err.Error()
	case errors.Is(err, release.ErrNotOwned):
		return "the Helm release is not owned by this VerifiedHelmRelease"
	case errors.Is(err, release.ErrPending):
		return "another operation on the Helm release is in progress"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timed out" + seeLog
	}
	// The names are the verified chart's.
	if missing := (*release.MissingPermissionsError)(nil); errors.As(err, &missing) {
		return "the preflight found " + missing.Summary(8)
	}
	// The CRD's name is the verified chart's; the owner a UID.
	if owned := (*release.CRDOwnedError)(nil); errors.As(err, &owned) {
		return bounded(owned.Error(), 256)
	}
	if pr := (*release.PostRenderError)(nil); errors.As(err, &pr) {
		// Its message can quote what the chart rendered.
		return fmt.Sprintf("spec.postRenderers[%d] (kustomize) failed", pr.Index) + seeLog
	}
	if errors.Is(err, release.ErrInvalidCRD) {
		// What is wrong with the verified chart's own file.
		_, what, _ := strings.Cut(err.Error(), "crds: ")
		return bounded(what, 256)
	}
	var summary []string
	if tpl := failedTemplate(err.Error(), templates); tpl != "" {
		summary = append(summary, "the chart did not render (template "+tpl+")")
	}
	if answer := apiAnswer(err); answer != "" {
		summary = append(summary, answer)
	}
	if len(summary) == 0 {
		return "Helm failed" + seeLog
	}
	return bounded(strings.Join(summary, ": "), 256) + seeLog
}

// apiAnswer says what the API server answered, if err holds its answer: the
// reason and code, and the kind it was about; never its message, which can
// echo what was sent or read. "" when err holds no API status.
func apiAnswer(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ""
	}
	s := status.Status()
	about := ""
	if d := s.Details; d != nil && word.MatchString(d.Kind) {
		about = " on " + d.Kind
		if word.MatchString(d.Group) {
			about += "." + d.Group
		}
	}
	reason := string(s.Reason)
	if !word.MatchString(reason) {
		reason = "an error"
	}
	return fmt.Sprintf("the API server answered %s (HTTP %d)%s", reason, s.Code, about)
}

// driftFailure summarises a failed drift check or correction for conditions
// and events, as helmFailure does a Helm action: what the API server
// answered, never its message (a dry run refused as Invalid echoes the
// fields it was sent); the whole error goes to the manager's log only.
func driftFailure(err error) string {
	const seeLog = "; the manager's log has the whole error"
	if answer := apiAnswer(err); answer != "" {
		return answer + seeLog
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timed out" + seeLog
	}
	return "the check failed" + seeLog
}

// word is what a reason, kind or group may be to be written: letters, dots
// and dashes (an admission webhook chooses its own reason).
var word = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.-]{0,62}$`)

// templateRef is a template path as Helm names one in a render error
// (chart/templates/file, chart/charts/sub/templates/file), with the line
// and column that may follow it.
var templateRef = regexp.MustCompile(`[A-Za-z0-9_.-]+(?:/charts/[A-Za-z0-9_.-]+)*/templates/[A-Za-z0-9_./-]+?(?::[0-9]+)*(?:[): ]|$)`)

// failedTemplate returns the first template path in msg that is one of the
// chart's own templates, without line or column: a path a template could
// have written into the error (a `fail` message) is echoed only when the
// verified chart has that template, and numbers are never echoed, so what a
// release read cannot be spelled through it.
func failedTemplate(msg string, templates map[string]bool) string {
	for _, m := range templateRef.FindAllString(msg, 8) {
		p := strings.TrimRight(m, "): ")
		if i := strings.Index(p, ":"); i >= 0 {
			p = p[:i]
		}
		if templates[p] {
			return p
		}
	}
	return ""
}

// templatePaths lists the template paths of c and its subcharts as Helm's
// engine names them (chart/templates/x.yaml, chart/charts/sub/templates/
// x.yaml). Helm changes the chart while it renders, so list them before.
func templatePaths(c *helmchart.Chart) map[string]bool {
	paths := map[string]bool{}
	var walk func(c *helmchart.Chart)
	walk = func(c *helmchart.Chart) {
		for _, t := range c.Templates {
			paths[path.Join(c.ChartFullPath(), t.Name)] = true
		}
		for _, d := range c.Dependencies() {
			walk(d)
		}
	}
	if c != nil {
		walk(c)
	}
	return paths
}

// bounded cuts s to at most limit bytes, ending with "..." when cut, and
// never inside a UTF-8 sequence.
func bounded(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// maxConditionMessage is what a condition's message holds comfortably.
const maxConditionMessage = 2048

// actingAs names who a Helm action ran as, for messages.
func actingAs(acct *identity.Account) string {
	switch {
	case acct == nil:
		return "no identity"
	case acct.User == "":
		return "the manager's own identity"
	}
	return acct.User
}
