package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// boundRow is a row of a table of bounds in docs/security.md: `name`, value.
var boundRow = regexp.MustCompile("(?m)^\\| `([a-z]+\\.)?([A-Za-z0-9]+)` \\| ([^|]+?) \\|")

// TestSecurityDocBounds keeps the values docs/security.md states for the caps
// on untrusted input (internal/limits) and for what the manager keeps (the
// verification cache, internal/gate; revocation statuses and CRLs,
// internal/revocation) equal to the constants in the code: every constant
// of those files is in a table, with its value.
func TestSecurityDocBounds(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	stated := map[string]string{}
	for _, m := range boundRow.FindAllStringSubmatch(string(doc), -1) {
		stated[m[1]+m[2]] = strings.TrimSpace(m[3])
	}
	for _, src := range []struct{ file, prefix string }{
		{"internal/limits/limits.go", ""},
		{"internal/gate/cache.go", "gate."},
		{"internal/revocation/revocation.go", "revocation."},
	} {
		consts := constantsOf(t, filepath.Join(root, src.file))
		if len(consts) == 0 {
			t.Fatalf("%s: no constants found", src.file)
		}
		for name, value := range consts {
			got, ok := stated[src.prefix+name]
			if !ok {
				t.Errorf("docs/security.md: %s%s (%s) is in no table of bounds", src.prefix, name, src.file)
				continue
			}
			if got != value {
				t.Errorf("docs/security.md: %s%s is %q; the code says %q", src.prefix, name, got, value)
			}
		}
	}
}

// constantsOf returns the numeric constants file declares, each value as the
// docs write it: sizes (a name with "Bytes") in KiB or MiB, durations in h
// or s, counts as numbers. Only its constant declarations are type-checked
// (with the standard packages they use), not the rest of its package.
func constantsOf(t *testing.T, file string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The constant declarations, and the imports they use (time), nothing
	// else: type-checking the file's other imports from source would take
	// minutes.
	var decls []ast.Decl
	used := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			decls = append(decls, g)
			ast.Inspect(g, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok {
						used[id.Name] = true
					}
				}
				return true
			})
		}
	}
	imports := &ast.GenDecl{Tok: token.IMPORT}
	for _, spec := range f.Imports {
		path := strings.Trim(spec.Path.Value, `"`)
		name := path[strings.LastIndex(path, "/")+1:]
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if used[name] {
			imports.Specs = append(imports.Specs, spec)
		}
	}
	consts := &ast.File{Name: f.Name, Decls: append([]ast.Decl{imports}, decls...)}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check(f.Name.Name, fset, []*ast.File{consts}, nil)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok || c.Val().Kind() != constant.Int {
			continue
		}
		v, _ := constant.Int64Val(c.Val())
		switch {
		case c.Type().String() == "time.Duration" && time.Duration(v)%time.Hour == 0:
			out[name] = fmt.Sprintf("%d h", time.Duration(v)/time.Hour)
		case c.Type().String() == "time.Duration":
			out[name] = fmt.Sprintf("%g s", time.Duration(v).Seconds())
		case strings.Contains(name, "Bytes") && v%(1<<20) == 0:
			out[name] = fmt.Sprintf("%d MiB", v>>20)
		case strings.Contains(name, "Bytes") && v%(1<<10) == 0:
			out[name] = fmt.Sprintf("%d KiB", v>>10)
		default:
			out[name] = fmt.Sprint(v)
		}
	}
	return out
}
