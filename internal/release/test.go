package release

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// TestResult is what a release's Helm tests did: each test hook's name and
// phase (Succeeded, Failed, Unknown).
type TestResult struct {
	Hooks []TestHook
}

// TestHook is one test hook's outcome.
type TestHook struct {
	Name, Kind string
	Phase      release.HookPhase
}

// Failed names the first test that did not succeed, "" when all did.
func (r TestResult) Failed() string {
	for _, h := range r.Hooks {
		if h.Phase != release.HookPhaseSucceeded {
			return fmt.Sprintf("%s %s: %s", h.Kind, h.Name, h.Phase)
		}
	}
	return ""
}

// Test runs the test hooks (helm test) of the revision trusted vouches for:
// the record is read and its digest checked first (ErrRecordTampered
// otherwise), and the hooks run are that record's, as read and checked,
// never a record read again afterwards. How the hooks ran is not written
// back to the record, which stays as chartproof wrote it. It returns an
// error when a test failed or could not run, with what each test did.
func (m *Manager) Test(ctx context.Context, loc Location, name string, trusted Trust, timeout time.Duration) (TestResult, error) {
	namespace := loc.Namespace
	cfg, err := m.configuration(ctx, loc, name)
	if err != nil {
		return TestResult{}, fmt.Errorf("release: test %s/%s: %w", namespace, name, err)
	}
	rel, err := trustedRecord(cfg, name, trusted)
	if err != nil {
		return TestResult{}, fmt.Errorf("release: test %s/%s: %w", namespace, name, err)
	}
	// Helm's test action reads the release from its storage and writes it
	// back: it is given a storage in memory holding the record checked.
	mem := driver.NewMemory()
	mem.SetNamespace(namespace)
	if err := mem.Create(fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, rel.Version), rel); err != nil {
		return TestResult{}, fmt.Errorf("release: test %s/%s: %w", namespace, name, err)
	}
	cfg.Releases = storage.Init(mem)
	test := action.NewReleaseTesting(cfg)
	test.Namespace = namespace
	if test.Timeout = timeout; timeout <= 0 {
		test.Timeout = m.timeout
	}
	ran, runErr := test.Run(name)
	var res TestResult
	if ran != nil {
		for _, h := range ran.Hooks {
			if !isTestHook(h) {
				continue
			}
			th := TestHook{Name: h.Name, Kind: h.Kind, Phase: release.HookPhaseUnknown}
			if h.LastRun.Phase != "" {
				th.Phase = h.LastRun.Phase
			}
			res.Hooks = append(res.Hooks, th)
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("release: test %s/%s: %w", namespace, name, runErr)
	}
	if f := res.Failed(); f != "" {
		return res, fmt.Errorf("release: test %s/%s: %s", namespace, name, f)
	}
	return res, nil
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}
