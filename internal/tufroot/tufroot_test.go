package tufroot

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/policy"
	"github.com/chartproof/chartproof/internal/testtuf"
)

// trustedRoot is a stand-in for a trusted_root.json: the Store checks the
// target's length and hashes, not what it says (internal/policy parses it).
func trustedRoot(n int) []byte {
	return fmt.Appendf(nil, `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","n":%d}`, n)
}

// clock is a settable time for the Store's refresh and expiry decisions
// (the TUF client checks expiry with the real time).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	s, err := NewStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	s.now = c.now
	return s, c
}

func newRepo(t *testing.T, n int) (*testtuf.Repo, policy.TUFRepository) {
	t.Helper()
	r, err := testtuf.New(trustedRoot(n))
	if err != nil {
		t.Fatal(err)
	}
	srv := r.Serve()
	t.Cleanup(srv.Close)
	return r, policy.TUFRepository{Location: srv.URL, Root: r.Root(), Refresh: time.Minute}
}

func read(t *testing.T, s *Store, repo policy.TUFRepository, want int) policy.TUFTrustedRoot {
	t.Helper()
	got, err := s.TrustedRoot(repo)
	if err != nil {
		t.Fatalf("TrustedRoot: %v", err)
	}
	if string(got.JSON) != string(trustedRoot(want)) {
		t.Fatalf("trusted root = %s, want %s", got.JSON, trustedRoot(want))
	}
	return got
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefresh: a new trusted root is read once the refresh interval has
// passed, not before; a root rotation is followed from the pinned root; a
// change counts in Generation and is announced, the first read is not.
func TestRefresh(t *testing.T) {
	s, c := newStore(t)
	var changed []string
	s.OnChange(func(key string) { changed = append(changed, key) })
	r, repo := newRepo(t, 1)
	first := read(t, s, repo, 1)
	if first.Digest == "" || first.Stale != "" || !first.Expires.After(time.Now()) {
		t.Fatalf("first read = %+v, want a digest, an expiry ahead and nothing stale", first)
	}
	if s.Generation() != 0 || len(changed) != 0 {
		t.Fatalf("generation %d, changes %v after the first read, want none", s.Generation(), changed)
	}

	must(t, r.Publish(trustedRoot(2)))
	read(t, s, repo, 1) // within the refresh interval: kept
	if due := s.due(); len(due) != 0 {
		t.Fatalf("due = %v within the refresh interval, want none", due)
	}
	c.add(time.Minute)
	if due := s.due(); len(due) != 1 || due[0].Location != repo.Location {
		t.Fatalf("due = %v after the refresh interval, want the repository", due)
	}
	read(t, s, repo, 2)
	if s.Generation() != 1 || len(changed) != 1 || changed[0] != repo.Location {
		t.Fatalf("generation %d, changes %v, want 1 change of %s", s.Generation(), changed, repo.Location)
	}

	must(t, r.RotateRoot(trustedRoot(3)))
	c.add(time.Minute)
	read(t, s, repo, 3)
	// A new Store pinned to the first root follows the rotation too.
	s2, _ := newStore(t)
	read(t, s2, repo, 3)
}

// TestRefused (FRS-02, FRS-04, POL-01): an expired timestamp, a timestamp
// signed by a key the root does not list, a root setting a threshold of 0
// (go-tuf GHSA-fphv-w9fq-2525), and a rolled-back repository are refused;
// each control reads the same repository unbroken.
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(*testtuf.Repo) error
		why    string // in the error
	}{
		{"expired timestamp", func(r *testtuf.Repo) error { return r.ExpireTimestamp() }, "timestamp.json is expired"},
		{"timestamp signed by another key", func(r *testtuf.Repo) error { return r.SignTimestampWith() }, "not enough signatures"},
		{"threshold 0 for the timestamp", func(r *testtuf.Repo) error {
			if err := r.SetThreshold(metadata.TIMESTAMP, 0); err != nil {
				return err
			}
			return r.SignTimestampWith() // would count under a threshold of 0
		}, "insufficient threshold"},
	} {
		t.Run(tc.name+" (control)", func(t *testing.T) {
			s, _ := newStore(t)
			_, repo := newRepo(t, 1)
			read(t, s, repo, 1)
		})
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			r, repo := newRepo(t, 1)
			must(t, tc.break_(r))
			_, err := s.TrustedRoot(repo)
			if !errors.Is(err, policy.ErrTrustedRootRefused) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %v, want ErrTrustedRootRefused for %q", err, tc.why)
			}
		})
	}

	t.Run("rollback", func(t *testing.T) {
		s, c := newStore(t)
		r, repo := newRepo(t, 1)
		old := r.Files()
		must(t, r.Publish(trustedRoot(2)))
		read(t, s, repo, 2)
		r.SetFiles(old) // the mirror serves the state before
		c.add(time.Minute)
		got := read(t, s, repo, 2) // the last verified, not the older one
		if !strings.Contains(got.Stale, "version") {
			t.Fatalf("stale = %q, want the rollback's version error", got.Stale)
		}
		// Control: the older state itself verifies for a client that
		// never saw the newer one.
		fresh, _ := newStore(t)
		read(t, fresh, repo, 1)
	})
}

// TestUnavailable: a repository that answers 503 is unavailable before
// anything verified; after, the last trusted root verified is used, marked
// stale, until its metadata expires, and then it is refused, which counts
// as a change. The metrics say when the metadata expires and count the
// failed reads.
func TestUnavailable(t *testing.T) {
	s, c := newStore(t)
	reg := prometheus.NewRegistry()
	m, err := metrics.NewTUF(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Metrics = m
	r, repo := newRepo(t, 1)
	r.SetDown(true)
	if _, err := s.TrustedRoot(repo); !errors.Is(err, policy.ErrTrustedRootUnavailable) {
		t.Fatalf("err = %v, want ErrTrustedRootUnavailable", err)
	}
	r.SetDown(false)
	c.add(retryFailed) // a failure is reported again until then
	good := read(t, s, repo, 1)
	want := fmt.Sprintf(`
# HELP chartproof_tuf_read_failures_total Reads of a TUF repository that failed: reason unavailable (could not be read) or refused (did not verify: expired, rolled back, under threshold, a target of the wrong hash).
# TYPE chartproof_tuf_read_failures_total counter
chartproof_tuf_read_failures_total{reason="unavailable",repository=%q} 1
# HELP chartproof_tuf_metadata_expiry_timestamp_seconds When the TUF metadata (the earliest of root, timestamp, snapshot and targets) vouching for a repository's last verified trusted root expires, in seconds since the epoch; past it the trusted root is refused (TrustedRootRefused).
# TYPE chartproof_tuf_metadata_expiry_timestamp_seconds gauge
chartproof_tuf_metadata_expiry_timestamp_seconds{repository=%q} %d
`, repo.Location, repo.Location, good.Expires.Unix())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	r.SetDown(true)
	c.add(time.Minute)
	got := read(t, s, repo, 1)
	if got.Stale == "" {
		t.Fatal("the last trusted root is not marked stale while the repository is down")
	}
	before := s.Generation()
	c.add(good.Expires.Sub(c.now()) + time.Second)
	if _, err := s.TrustedRoot(repo); !errors.Is(err, policy.ErrTrustedRootRefused) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want the expired last root refused", err)
	}
	// Losing the trusted root is a change its releases must see at once.
	if s.Generation() != before+1 {
		t.Fatalf("generation %d after the last root expired, want %d", s.Generation(), before+1)
	}
}

// TestAirGapped: a copy of the repository read by file name (a ConfigMap)
// verifies as the repository does; a target altered in the copy is
// refused.
func TestAirGapped(t *testing.T) {
	r, err := testtuf.New(trustedRoot(1))
	if err != nil {
		t.Fatal(err)
	}
	copyOf := func(data map[string]string) policy.TUFRepository {
		return policy.TUFRepository{Location: "configMap ns/tuf", Root: r.Root(), Files: func(name string) ([]byte, error) {
			b, ok := data[name]
			if !ok {
				return nil, errors.New("no such key")
			}
			return []byte(b), nil
		}}
	}
	s, _ := newStore(t)
	read(t, s, copyOf(r.ConfigMapData()), 1)

	must(t, r.Publish(trustedRoot(2)))
	data := r.ConfigMapData()
	read(t, s, copyOf(data), 2) // every call reads the copy: no interval

	for name := range data {
		if strings.HasSuffix(name, "."+testtuf.TargetName) && data[name] == string(trustedRoot(2)) {
			data[name] = string(trustedRoot(9)) // same length, other bytes
		}
	}
	fresh, _ := newStore(t)
	if _, err := fresh.TrustedRoot(copyOf(data)); !errors.Is(err, policy.ErrTrustedRootRefused) {
		t.Fatalf("err = %v, want the altered target refused", err)
	}
}

// TestRestartOffline: a Store started while its repository is down (a
// manager restarted during an outage) uses the trusted root an earlier run
// verified and kept in the cache directory, verified again from the pinned
// root without a request and marked stale, until its metadata expires; past
// that, and with an empty cache directory (the control), the repository is
// unavailable.
func TestRestartOffline(t *testing.T) {
	dir := t.TempDir()
	r, repo := newRepo(t, 1)
	first, err := NewStore(dir, nil)
	must(t, err)
	good := read(t, first, repo, 1)

	r.SetDown(true)
	restart := func(dir string, at time.Time) *Store {
		s, err := NewStore(dir, nil)
		must(t, err)
		c := &clock{t: at}
		s.now = c.now
		return s
	}
	got := read(t, restart(dir, time.Now()), repo, 1)
	if got.Stale == "" || got.Digest != good.Digest || !got.Expires.Equal(good.Expires) {
		t.Fatalf("after a restart with the repository down: digest %s, expires %s, stale %q; want %s, %s, marked stale",
			got.Digest, got.Expires, got.Stale, good.Digest, good.Expires)
	}
	if _, err := restart(dir, good.Expires.Add(time.Second)).TrustedRoot(repo); !errors.Is(err, policy.ErrTrustedRootUnavailable) {
		t.Fatalf("kept metadata expired: err = %v, want ErrTrustedRootUnavailable", err)
	}
	if _, err := restart(t.TempDir(), time.Now()).TrustedRoot(repo); !errors.Is(err, policy.ErrTrustedRootUnavailable) {
		t.Fatalf("control, nothing kept: err = %v, want ErrTrustedRootUnavailable", err)
	}
}
