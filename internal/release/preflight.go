package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"github.com/chartproof/chartproof/internal/drift"
)

// LifecycleVerbs are the verbs the release's identity needs on each object
// the chart renders, checked before an install or upgrade writes anything
// (preflight): Helm reads an object before it writes it, creates it on
// install, patches it on upgrade (as chartproof does to correct drift), and
// deletes it on uninstall or when an upgrade drops it.
var LifecycleVerbs = []string{"get", "create", "patch", "delete"}

// preflightWorkers bounds the SelfSubjectAccessReviews in flight at once.
const preflightWorkers = 8

// ErrPermissionsMissing is a MissingPermissionsError: the release's
// identity may not do all a release does to what the chart rendered, and
// nothing was written.
var ErrPermissionsMissing = errors.New("permissions missing")

// Permission is a verb on the objects of a resource: Name "" is any object
// of it in Namespace, Namespace "" a cluster-scoped resource.
type Permission struct {
	Verb, Group, Resource, Namespace, Name string
}

func (p Permission) String() string {
	s := p.Verb + " " + p.Resource
	if p.Group != "" {
		s += "." + p.Group
	}
	if p.Name != "" {
		s += " " + p.Name
	}
	if p.Namespace != "" {
		return s + " in " + p.Namespace
	}
	return s + " (cluster-wide)"
}

// MissingPermissionsError lists, in order, every permission the release's
// identity lacks on the objects the chart rendered.
type MissingPermissionsError struct {
	Missing []Permission
}

func (e *MissingPermissionsError) Error() string {
	return "preflight: " + e.Summary(len(e.Missing))
}

// Summary names the first max missing permissions, and how many more
// there are.
func (e *MissingPermissionsError) Summary(max int) string {
	list := make([]string, 0, min(max, len(e.Missing)))
	for _, p := range e.Missing[:min(max, len(e.Missing))] {
		list = append(list, p.String())
	}
	noun := "permissions"
	if len(e.Missing) == 1 {
		noun = "permission"
	}
	s := fmt.Sprintf("%d %s missing: %s", len(e.Missing), noun, strings.Join(list, "; "))
	if more := len(e.Missing) - len(list); more > 0 {
		s += fmt.Sprintf("; and %d more", more)
	}
	return s
}

func (e *MissingPermissionsError) Is(target error) bool { return target == ErrPermissionsMissing }

// preflighter is the last post-renderer: it passes what was rendered on
// unchanged when the release's identity may do every LifecycleVerb on every
// object in it, and otherwise fails the action, before Helm writes a record
// or an object, with a MissingPermissionsError. It asks the API server
// (SelfSubjectAccessReview, as that identity), so every authorizer the
// cluster runs answers, not a copy of RBAC's rules. Hooks are not checked:
// Helm does not pass them through a post-renderer.
type preflighter struct {
	ctx       context.Context
	reviews   authorizationv1client.SelfSubjectAccessReviewInterface
	mapper    meta.RESTMapper
	namespace string // of namespaced objects that name none
}

func (p preflighter) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	need, err := p.permissions(rendered.Bytes())
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	missing, err := p.review(need)
	if err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	if len(missing) > 0 {
		return nil, &MissingPermissionsError{Missing: missing}
	}
	return rendered, nil
}

// permissions lists every LifecycleVerb on every object in the rendered
// stream, each once, the objects read as drift detection reads a release's
// manifest (drift.Desired: a List's items, the release's namespace for
// namespaced objects that name none, at most its number of objects). A
// kind the API server does not serve is left to Helm, which fails on it
// with its own error.
func (p preflighter) permissions(rendered []byte) ([]Permission, error) {
	objs, err := drift.Desired(string(rendered), "", p.namespace, func(u *unstructured.Unstructured) (bool, error) {
		mapping, err := p.mapping(u)
		if meta.IsNoMatchError(err) {
			return false, nil // skipped below
		}
		if err != nil {
			return false, err
		}
		return mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
	})
	if err != nil {
		return nil, err
	}
	var out []Permission
	seen := map[Permission]bool{}
	for _, obj := range objs {
		mapping, err := p.mapping(obj)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, verb := range LifecycleVerbs {
			perm := Permission{Verb: verb, Group: mapping.Resource.Group, Resource: mapping.Resource.Resource, Namespace: obj.GetNamespace(), Name: obj.GetName()}
			if !seen[perm] {
				seen[perm] = true
				out = append(out, perm)
			}
		}
	}
	return out, nil
}

// mapping is the API resource of obj's kind.
func (p preflighter) mapping(obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	return p.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// review returns the permissions of need that the API server does not
// grant, in need's order. Each verb is asked first on the whole resource
// in its namespace (one review for all the objects of a kind in the usual
// case), then, when that is refused, object by object (RBAC grants by
// resourceNames). create is asked on the resource alone: no authorizer
// sees the name of an object being created.
func (p preflighter) review(need []Permission) ([]Permission, error) {
	type scope struct{ verb, group, resource, namespace string }
	var scopes []scope
	names := map[scope][]Permission{}
	for _, perm := range need {
		s := scope{perm.Verb, perm.Group, perm.Resource, perm.Namespace}
		if _, ok := names[s]; !ok {
			scopes = append(scopes, s)
		}
		names[s] = append(names[s], perm)
	}
	var (
		mu      sync.Mutex
		missing = map[Permission]bool{}
	)
	g, ctx := errgroup.WithContext(p.ctx)
	g.SetLimit(preflightWorkers)
	for _, s := range scopes {
		g.Go(func() error {
			whole := Permission{Verb: s.verb, Group: s.group, Resource: s.resource, Namespace: s.namespace}
			ok, err := p.allowed(ctx, whole)
			if err != nil || ok {
				return err
			}
			if s.verb == "create" {
				mu.Lock()
				missing[whole] = true
				mu.Unlock()
				return nil
			}
			for _, perm := range names[s] {
				ok, err := p.allowed(ctx, perm)
				if err != nil {
					return err
				}
				if !ok {
					mu.Lock()
					missing[perm] = true
					mu.Unlock()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Permission
	for _, s := range scopes {
		whole := Permission{Verb: s.verb, Group: s.group, Resource: s.resource, Namespace: s.namespace}
		if missing[whole] {
			out = append(out, whole)
			continue
		}
		for _, perm := range names[s] {
			if missing[perm] {
				out = append(out, perm)
			}
		}
	}
	return out, nil
}

// allowed asks the API server whether the identity may do perm.
func (p preflighter) allowed(ctx context.Context, perm Permission) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: perm.Verb, Group: perm.Group, Resource: perm.Resource, Namespace: perm.Namespace, Name: perm.Name,
		},
	}}
	got, err := p.reviews.Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("asking whether it may %s: %w", perm, err)
	}
	return got.Status.Allowed, nil
}
