package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
	pkgerrors "github.com/pkg/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/chartproof/chartproof/internal/release"
)

// TestHelmFailureLeaksNothing: what Helm's errors carry of what a release
// read or rendered (here CANARY) never reaches the summary written to
// conditions and events (TEN-02); what chartproof knows for sure does.
func TestHelmFailureLeaksNothing(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "CANARY-name", errors.New("CANARY in the reason"))
	odd := &apierrors.StatusError{ErrStatus: metav1.Status{Reason: "CANARY chosen by a webhook", Code: 400}}
	templates := map[string]bool{
		"hello/templates/exfil.yaml":             true,
		"hello/templates/a.yaml":                 true,
		"hello/templates/count.yaml":             true,
		"hello/charts/common/templates/_tpl.tpl": true,
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "fail of a lookup",
			err:  pkgerrors.Wrap(errors.New(`execution error at (hello/templates/exfil.yaml:1:3): {"items":[{"data":{"token":"CANARY"}}]}`), "install"),
			want: "the chart did not render (template hello/templates/exfil.yaml)",
		},
		{
			name: "fail message that spells a template location",
			err:  errors.New(`execution error at (hello/templates/a.yaml:2:4): x/templates/CANARY.yaml:1:1`),
			want: "the chart did not render (template hello/templates/a.yaml)",
		},
		{
			name: "a location the chart does not have, first in the message",
			err:  errors.New(`error validating data: unknown field "hello/templates/CANARY:1" in ConfigMap`),
			want: "Helm failed",
		},
		{
			name: "a subchart's template",
			err:  errors.New(`execution error in (hello/charts/common/templates/_tpl.tpl:3:4): CANARY`),
			want: "the chart did not render (template hello/charts/common/templates/_tpl.tpl)",
		},
		{
			name: "forbidden lookup",
			err:  fmt.Errorf(`template: hello/templates/count.yaml:6:26: executing "hello/templates/count.yaml" at <lookup>: error calling lookup: %w`, forbidden),
			want: "the chart did not render (template hello/templates/count.yaml): the API server answered Forbidden (HTTP 403) on secrets",
		},
		{
			name: "forbidden create, among Helm's multierror",
			err:  pkgerrors.Wrap(multierror.Append(nil, forbidden), "could not get information about the resource CANARY"),
			want: "the API server answered Forbidden (HTTP 403) on secrets",
		},
		{
			name: "forbidden create in another group",
			err:  apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, "CANARY", errors.New("CANARY")),
			want: "the API server answered Forbidden (HTTP 403) on clusterroles.rbac.authorization.k8s.io",
		},
		{name: "a reason of free text", err: odd, want: "the API server answered an error (HTTP 400)"},
		{name: "anything else", err: errors.New("manifest CANARY is invalid"), want: "Helm failed"},
		{name: "not owned", err: fmt.Errorf("revision 3 has owner %q: %w", "CANARY", release.ErrNotOwned), want: "the Helm release is not owned by this VerifiedHelmRelease"},
		{name: "pending", err: fmt.Errorf("CANARY: %w", release.ErrPending), want: "another operation on the Helm release is in progress"},
		{name: "timeout", err: fmt.Errorf("CANARY: %w", context.DeadlineExceeded), want: "timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := helmFailure(tc.err, templates)
			if strings.Contains(got, "CANARY") {
				t.Errorf("helmFailure() = %q carries what the release read", got)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("helmFailure() = %q; want it to start with %q", got, tc.want)
			}
		})
	}
	long := "hello/templates/" + strings.Repeat("a", 500) + ".yaml"
	if got := helmFailure(errors.New("execution error at ("+long+":1:1): x"), map[string]bool{long: true}); len(got) > 320 {
		t.Errorf("helmFailure() of a long path is %d bytes; want it bounded", len(got))
	}
}

// TestDriftFailureLeaksNothing: a dry run refused as Invalid echoes the
// fields it was sent (a Secret's value among them); the drift summary says
// what the API server answered and nothing of its message. Its twin, an
// error that is no API answer, is summarised without its text either.
func TestDriftFailureLeaksNothing(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "token",
		field.ErrorList{field.Invalid(field.NewPath("data", "token"), "s3cr3t-value", "bad")})
	got := driftFailure(fmt.Errorf("Secret ns/token: server-side apply dry run: %w", invalid))
	if want := "the API server answered Invalid (HTTP 422) on Secret"; !strings.HasPrefix(got, want) {
		t.Errorf("driftFailure() = %q; want it to start with %q", got, want)
	}
	other := driftFailure(errors.New("manifest document 3: s3cr3t-value"))
	for _, s := range []string{got, other} {
		if strings.Contains(s, "s3cr3t-value") || strings.Contains(s, "token") {
			t.Errorf("driftFailure() = %q; it must not echo the error's text", s)
		}
	}
}
