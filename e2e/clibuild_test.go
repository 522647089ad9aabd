package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCLIBuild: the command line build (go build -tags cli) leaves out the
// manager and what only the manager needs, whose package initialisation
// would run before every `chartproof verify` (docs/benchmarks.md); asked
// to run the manager, it says so. Its control, the full build, links them.
func TestCLIBuild(t *testing.T) {
	managerOnly := []string{
		"github.com/chartproof/chartproof/controllers",
		"sigs.k8s.io/controller-runtime/pkg/manager",
		"helm.sh/helm/v3/pkg/action",
		"k8s.io/client-go/kubernetes",
	}
	for _, tc := range []struct {
		name string
		tags []string
		want bool // whether the manager's packages are linked
	}{
		{"control: the full build", nil, true},
		{"the CLI build", []string{"-tags", "cli"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("go", append(append([]string{"list"}, tc.tags...), "-deps", "github.com/chartproof/chartproof")...)
			cmd.Dir = ".."
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := map[string]bool{}
			for _, p := range strings.Fields(string(out)) {
				deps[p] = true
			}
			for _, p := range managerOnly {
				if deps[p] != tc.want {
					t.Errorf("%s linked: %v, want %v", p, deps[p], tc.want)
				}
			}
		})
	}

	cmd := exec.Command(cliBin) // no subcommand: the manager
	cmd.Env = isolatedEnv(t)
	res := runCommand(t, cmd)
	if res.code != 1 || !strings.Contains(res.stderr, "command line only") {
		t.Errorf("the CLI build asked to run the manager: %s; want exit 1 saying it is the command line only", res)
	}
}
