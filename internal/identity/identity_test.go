package identity

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

var base = &rest.Config{Host: "https://127.0.0.1:1", BearerToken: "manager-token"}

func TestServiceAccountFor(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		named   string
		want    string
		wantErr error
	}{
		{name: "named", named: "deployer", want: "deployer"},
		{name: "named beats the default", opts: Options{DefaultServiceAccount: "default-releases"}, named: "deployer", want: "deployer"},
		{name: "the default", opts: Options{DefaultServiceAccount: "default-releases"}, want: "default-releases"},
		{name: "none: refused", wantErr: ErrNoServiceAccount},
		{name: "none, unsafe opt-in: the manager", opts: Options{ManagerIdentityUnsafe: true}, want: ""},
		{name: "the default beats the unsafe opt-in", opts: Options{DefaultServiceAccount: "d", ManagerIdentityUnsafe: true}, want: "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewFactory(base, tc.opts).ServiceAccountFor(tc.named)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("ServiceAccountFor(%q) = %q, %v; want %q, %v", tc.named, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestForImpersonates: every account's Helm manager acts as the
// ServiceAccount of the release's namespace, accounts are built once per
// user, and the manager's own identity is reached only through the unsafe
// opt-in.
func TestForImpersonates(t *testing.T) {
	f := NewFactory(base, Options{DefaultServiceAccount: "releases"})
	a, err := f.For("team-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Releases.ActingAs(), "system:serviceaccount:team-a:releases"; got != want || a.User != want {
		t.Errorf("acting as %q (User %q); want %q", got, a.User, want)
	}
	again, err := f.For("team-a", "releases")
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Error("For() built a second account for the same user; want the cached one")
	}
	b, err := f.For("team-b", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Releases.ActingAs(), "system:serviceaccount:team-b:releases"; got != want {
		t.Errorf("team-b acting as %q; want %q", got, want)
	}
	if _, err := NewFactory(base, Options{}).For("team-a", ""); !errors.Is(err, ErrNoServiceAccount) {
		t.Errorf("For() with no account and no default: error = %v; want ErrNoServiceAccount", err)
	}
	unsafe, err := NewFactory(base, Options{ManagerIdentityUnsafe: true}).For("team-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := unsafe.Releases.ActingAs(); got != "" {
		t.Errorf("unsafe opt-in acting as %q; want the manager's own identity", got)
	}
}

// TestAccountsBounded: however many account names releases choose, the
// Factory keeps at most maxAccounts, and an account dropped is built again.
func TestAccountsBounded(t *testing.T) {
	f := NewFactory(base, Options{})
	first, err := f.For("team-a", "deployer-0")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= maxAccounts; i++ {
		if _, err := f.For("team-a", "deployer-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.accounts); n > maxAccounts {
		t.Errorf("the factory keeps %d accounts; want at most %d", n, maxAccounts)
	}
	again, err := f.For("team-a", "deployer-0")
	if err != nil {
		t.Fatal(err)
	}
	if again.User != first.User || again.Releases.ActingAs() != "system:serviceaccount:team-a:deployer-0" {
		t.Errorf("the account built again acts as %q; want %q", again.Releases.ActingAs(), first.User)
	}
}

// TestOnlyIdentityBuildsReleaseManagers: release.NewManager is called by
// no package but this one, so no other code can hand Helm the manager's own
// config. Tests of internal/release itself are exempt.
func TestOnlyIdentityBuildsReleaseManagers(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if strings.HasPrefix(rel, filepath.Join("internal", "identity")+string(filepath.Separator)) ||
			strings.HasPrefix(rel, filepath.Join("internal", "release")+string(filepath.Separator)) {
			return nil
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewManager" {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "release" {
				t.Errorf("%s calls release.NewManager: build release managers through internal/identity", rel)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
