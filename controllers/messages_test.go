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
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/chartproof/chartproof/internal/release"
)

// TestHelmFailureLeaksNothing: what Helm's errors carry of what a release
// read or rendered (here CANARY) never reaches the summary written to
// conditions and events (TEN-02); what chartproof knows for sure does.
func TestHelmFailureLeaksNothing(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "CANARY-name", errors.New("CANARY in the reason"))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "fail of a lookup",
			err:  pkgerrors.Wrap(errors.New(`execution error at (hello/templates/exfil.yaml:1:3): {"items":[{"data":{"token":"CANARY"}}]}`), "install"),
			want: "the chart did not render at hello/templates/exfil.yaml:1:3",
		},
		{
			name: "fail message that spells a template location",
			err:  errors.New(`execution error at (hello/templates/a.yaml:2:4): x/templates/CANARY.yaml:1:1`),
			want: "the chart did not render at hello/templates/a.yaml:2:4",
		},
		{
			name: "forbidden lookup",
			err:  fmt.Errorf(`template: hello/templates/count.yaml:6:26: executing "hello/templates/count.yaml" at <lookup>: error calling lookup: %w`, forbidden),
			want: "the chart did not render at hello/templates/count.yaml:6:26: the API server answered Forbidden (HTTP 403) on secrets",
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
		{name: "anything else", err: errors.New("manifest CANARY is invalid"), want: "Helm failed"},
		{name: "not owned", err: fmt.Errorf("revision 3 has owner %q: %w", "CANARY", release.ErrNotOwned), want: "the Helm release is not owned by this VerifiedHelmRelease"},
		{name: "pending", err: fmt.Errorf("CANARY: %w", release.ErrPending), want: "another operation on the Helm release is in progress"},
		{name: "timeout", err: fmt.Errorf("CANARY: %w", context.DeadlineExceeded), want: "timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := helmFailure(tc.err)
			if strings.Contains(got, "CANARY") {
				t.Errorf("helmFailure() = %q carries what the release read", got)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("helmFailure() = %q; want it to start with %q", got, tc.want)
			}
		})
	}
	long := errors.New("execution error at (hello/templates/" + strings.Repeat("a", 500) + ".yaml:1:1): x")
	if got := helmFailure(long); len(got) > 320 {
		t.Errorf("helmFailure() of a long path is %d bytes; want it bounded", len(got))
	}
}
