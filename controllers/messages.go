package controllers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/chartproof/chartproof/internal/identity"
	"github.com/chartproof/chartproof/internal/release"
)

// helmFailure summarises a failed Helm action for the conditions and events
// that the release's authors read. A Helm error can carry what the release
// read or rendered: a template's `fail` of a `lookup` (a Secret, whole), an
// object name built from a value, the API server echoing a field. So the
// summary holds only what chartproof itself knows: its own errors, the
// reason and code of an API error and the kind it was about, or the
// template location of a render error. It is bounded in length; the whole
// error goes to the manager's log only.
func helmFailure(err error) string {
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
	var summary []string
	if loc := templateLocation.FindStringSubmatch(err.Error()); loc != nil {
		summary = append(summary, "the chart did not render at "+loc[1])
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		about := ""
		if d := s.Details; d != nil && d.Kind != "" {
			about = " on " + d.Kind
			if d.Group != "" {
				about += "." + d.Group
			}
		}
		summary = append(summary, fmt.Sprintf("the API server answered %s (HTTP %d)%s", s.Reason, s.Code, about))
	}
	if len(summary) == 0 {
		return "Helm failed" + seeLog
	}
	return bounded(strings.Join(summary, ": ")) + seeLog
}

// templateLocation finds the template location (chart/templates/file,
// with :line:column when Helm gives them) that Helm names first in a render
// error, after one of the prefixes Helm's own messages start with. Its
// characters are those of a path in the verified chart archive and of
// numbers; whatever a template wrote into the error (a `fail` message)
// comes after it.
var templateLocation = regexp.MustCompile(`(?:execution error at \(|template: |parse error at \(|YAML parse error on )([A-Za-z0-9_.-]{1,64}/templates/[A-Za-z0-9_./-]{1,128}?(?::[0-9]{1,6}(?::[0-9]{1,6})?)?)(?:[): ]|$)`)

// bounded cuts a summary to 256 bytes.
func bounded(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max]
	}
	return s
}

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
