package controllers

import (
	"errors"
	"fmt"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
	"github.com/chartproof/chartproof/internal/limits"
)

// A release's author cannot make the manager loop: each evaluation is
// bounded by limits.MaxHealthExprCost.

// healthExprEnv declares what an expression sees of an object: its
// top-level fields, as Flux's healthCheckExprs do (status.phase, not
// self.status.phase).
var healthExprEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("apiVersion", cel.StringType),
		cel.Variable("kind", cel.StringType),
		cel.Variable("metadata", cel.DynType),
		cel.Variable("spec", cel.DynType),
		cel.Variable("status", cel.DynType),
	)
})

// healthExpr is one compiled spec.healthCheckExprs item.
type healthExpr struct {
	inProgress, failed, current cel.Program // inProgress and failed may be nil
}

// healthExprs are a release's compiled health expressions, by kind.
type healthExprs map[schema.GroupVersionKind]healthExpr

// compileHealthExprs compiles spec.healthCheckExprs; an error names the
// expression that does not compile or is not a boolean.
func compileHealthExprs(specs []chartproofv1.HealthCheckExpr) (healthExprs, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	env, err := healthExprEnv()
	if err != nil {
		return nil, err
	}
	out := make(healthExprs, len(specs))
	for i, s := range specs {
		gv, err := schema.ParseGroupVersion(s.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("spec.healthCheckExprs[%d].apiVersion: %w", i, err)
		}
		gvk := gv.WithKind(s.Kind)
		if _, dup := out[gvk]; dup {
			return nil, fmt.Errorf("spec.healthCheckExprs[%d]: a second item for %s %s", i, s.APIVersion, s.Kind)
		}
		var e healthExpr
		for _, f := range []struct {
			field, src string
			prg        *cel.Program
		}{{"inProgress", s.InProgress, &e.inProgress}, {"failed", s.Failed, &e.failed}, {"current", s.Current, &e.current}} {
			if f.src == "" {
				continue
			}
			ast, iss := env.Compile(f.src)
			if iss.Err() != nil {
				return nil, fmt.Errorf("spec.healthCheckExprs[%d].%s: %w", i, f.field, iss.Err())
			}
			if ast.OutputType() != cel.BoolType {
				return nil, fmt.Errorf("spec.healthCheckExprs[%d].%s: a %s, not a bool", i, f.field, ast.OutputType())
			}
			if *f.prg, err = env.Program(ast, cel.CostLimit(limits.MaxHealthExprCost)); err != nil {
				return nil, fmt.Errorf("spec.healthCheckExprs[%d].%s: %w", i, f.field, err)
			}
		}
		if e.current == nil {
			return nil, fmt.Errorf("spec.healthCheckExprs[%d].current: required", i)
		}
		out[gvk] = e
	}
	return out, nil
}

// statusOf is the health of obj: by its expressions when exprs has its kind
// (inProgress, then failed, then current: the first true decides; none
// true, or an expression that cannot be evaluated, is InProgress), else
// kstatus's.
func (exprs healthExprs) statusOf(obj *unstructured.Unstructured) (status.Status, string, error) {
	e, ok := exprs[obj.GroupVersionKind()]
	if !ok {
		res, err := status.Compute(obj)
		if err != nil {
			return "", "", err
		}
		return res.Status, res.Message, nil
	}
	vars := map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind()}
	for _, f := range []string{"metadata", "spec", "status"} {
		v, ok := obj.Object[f]
		if !ok {
			v = map[string]any{}
		}
		vars[f] = v
	}
	var evalErrs []error
	for _, c := range []struct {
		prg    cel.Program
		status status.Status
		what   string
	}{{e.inProgress, status.InProgressStatus, "inProgress"}, {e.failed, status.FailedStatus, "failed"}, {e.current, status.CurrentStatus, "current"}} {
		if c.prg == nil {
			continue
		}
		out, _, err := c.prg.Eval(vars)
		if err != nil {
			evalErrs = append(evalErrs, fmt.Errorf("%s: %w", c.what, err))
			continue
		}
		if b, ok := out.Value().(bool); ok && b {
			return c.status, "healthCheckExprs: " + c.what + " is true", nil
		}
	}
	if err := errors.Join(evalErrs...); err != nil {
		return status.InProgressStatus, "healthCheckExprs: " + err.Error(), nil
	}
	return status.InProgressStatus, "healthCheckExprs: no expression is true", nil
}
