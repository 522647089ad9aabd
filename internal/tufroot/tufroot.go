// Package tufroot keeps Sigstore trusted roots fresh from TUF repositories
// (issue 12, item 4; THREATS FRS-02, FRS-04), with sigstore-go's TUF client
// (go-tuf v2): the client starts from a pinned root.json, walks the root
// rotations, refuses metadata that is unsigned, below its threshold, rolled
// back or expired, and checks the trusted_root.json target's length and
// hashes. A repository is read over HTTP(S) (the public-good one, a mirror),
// or from an air-gapped copy whose files the caller supplies (a ConfigMap).
//
// The Store only gathers: it says what the repository serves now, or why it
// could not tell (ErrTrustedRootUnavailable, ErrTrustedRootRefused from
// internal/policy). internal/policy decides what follows (the pinned
// fallback of the public-good repository when it cannot be reached).
package tufroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/chartproof/chartproof/internal/metrics"
	"github.com/chartproof/chartproof/internal/policy"
)

// Target is the name of the trusted root in a Sigstore TUF repository.
const Target = "trusted_root.json"

// retryFailed is how long a failed read is reported again before the
// repository is asked again, so an unreachable repository is not asked at
// every policy compile.
const retryFailed = 10 * time.Second

// Store reads TUF repositories and keeps, per repository and pinned root,
// the client's verified metadata (on disk, under its directory: what the
// client needs to refuse a rollback) and the last trusted root it verified.
// Safe for concurrent use.
type Store struct {
	// Metrics records each repository's expiry and failed reads; nil
	// records nothing. Set it before the first read.
	Metrics *metrics.TUF

	dir    string
	client *http.Client
	now    func() time.Time

	mu    sync.Mutex
	repos map[string]*repo
	// generation counts the changes of any repository's trusted root:
	// what was derived from a trusted root is stale when it moved.
	generation uint64
	onChange   []func(location string)
}

// NewStore keeps the clients' metadata under dir (created if missing; each
// repository in a directory of its own) and reads repositories over HTTP
// with client (nil: a client with a 10 s timeout).
func NewStore(dir string, client *http.Client) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tufroot: cache directory: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Store{dir: dir, client: client, now: time.Now, repos: map[string]*repo{}}, nil
}

// repo is what the Store knows of one repository under one pinned root.
type repo struct {
	mu    sync.Mutex
	dir   string
	last  policy.TUFRepository   // the last request, which Start reads again
	good  *policy.TUFTrustedRoot // the last trusted root verified; nil before the first
	err   error                  // why the last read failed; nil after a success
	tried time.Time              // when the repository was last asked
	// announced identifies the last answer given: the trusted root's
	// digest, "refused" or "unavailable"; empty before the first.
	announced string
}

// Generation counts the changes OnChange announces.
func (s *Store) Generation() uint64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

// OnChange registers f, called with the repository's location
// (TUFRepository.Location) when what it gives changed: another trusted
// root, none any more (its metadata expired, or it stopped verifying with
// nothing valid left), or one again; not at the first answer. Register
// before the first read.
func (s *Store) OnChange(f func(location string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, f)
}

// key identifies a repository: where it is read from and the sha256 of the
// root.json it starts from.
func key(r policy.TUFRepository) string {
	sum := sha256.Sum256(r.Root)
	return r.Location + "#" + hex.EncodeToString(sum[:8])
}

// TrustedRoot returns the trusted_root.json repository r serves now. It is
// read again when r.Refresh has passed since the last read (an air-gapped
// copy at every call: its files are at hand), and the last one verified is
// used, until its metadata expires, while the repository cannot be read or
// what it serves does not verify. Errors wrap ErrTrustedRootUnavailable
// (nothing read) or ErrTrustedRootRefused (what was read did not verify).
func (s *Store) TrustedRoot(r policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	if len(r.Root) == 0 && r.Files == nil && r.Location == policy.PublicGoodTUF {
		r.Root = sgtuf.DefaultRoot()
	}
	if len(r.Root) == 0 {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: TUF repository %s: no root.json to start from", policy.ErrTrustedRootRefused, r.Location)
	}
	st := s.repo(r)
	st.mu.Lock()
	defer st.mu.Unlock()
	out, err := s.lookup(st, r)
	// A change of what the repository gives (another trusted root, or
	// none any more, or one again) is announced; the first answer is not.
	id := out.Digest
	switch {
	case errors.Is(err, policy.ErrTrustedRootRefused):
		id = "refused"
	case err != nil:
		id = "unavailable"
	}
	if id != st.announced {
		if st.announced != "" {
			s.changed(r.Location)
		}
		st.announced = id
	}
	return out, err
}

// lookup answers from what st holds while it may, and reads the repository
// otherwise.
func (s *Store) lookup(st *repo, r policy.TUFRepository) (policy.TUFTrustedRoot, error) {
	now := s.now()
	fresh := st.good != nil && now.Before(st.good.Expires)
	switch {
	case r.Files == nil && fresh && st.err == nil && now.Sub(st.tried) < refreshOf(r):
		return *st.good, nil
	case r.Files == nil && st.err != nil && now.Sub(st.tried) < retryFailed:
		return st.outcome(now)
	}
	st.tried, st.last = now, r
	got, err := s.read(st, r, false)
	if err != nil && st.good == nil && r.Files == nil && errors.Is(err, policy.ErrTrustedRootUnavailable) {
		// Nothing verified yet by this process (it just started): the
		// trusted root an earlier run verified and kept in the cache
		// directory stands in, verified again from the pinned root without
		// the network, until its metadata expires.
		if kept, kerr := s.read(st, r, true); kerr == nil && now.Before(kept.Expires) {
			s.Metrics.Verified(r.Location, kept.Expires)
			st.good = &kept
		}
	}
	if err != nil {
		reason := "unavailable"
		if errors.Is(err, policy.ErrTrustedRootRefused) {
			reason = "refused"
		}
		s.Metrics.Failed(r.Location, reason)
		st.err = err
		return st.outcome(now)
	}
	s.Metrics.Verified(r.Location, got.Expires)
	st.err, st.good = nil, &got
	return got, nil
}

// outcome is what a failed read leaves: the last trusted root verified
// while its metadata has not expired (the failure noted), else the error.
func (st *repo) outcome(now time.Time) (policy.TUFTrustedRoot, error) {
	if st.good != nil && now.Before(st.good.Expires) {
		out := *st.good
		out.Stale = st.err.Error()
		return out, nil
	}
	if st.good != nil {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: the last trusted root verified expired at %s, and reading again failed: %w",
			policy.ErrTrustedRootRefused, st.good.Expires.UTC().Format(time.RFC3339), st.err)
	}
	return policy.TUFTrustedRoot{}, st.err
}

func (s *Store) changed(location string) {
	s.mu.Lock()
	s.generation++
	fs := append([]func(string){}, s.onChange...)
	s.mu.Unlock()
	for _, f := range fs {
		f(location)
	}
}

// refreshTick is how often Start looks for repositories due a read.
const refreshTick = 5 * time.Second

// Start reads again, until ctx ends, each repository read over HTTP(S)
// whose refresh interval has passed since it was last read, so a trusted
// root that changed is seen (and announced to OnChange) within its
// interval, whether or not a policy is compiled meanwhile. An air-gapped
// copy changes with its ConfigMap, whose watch re-queues its releases.
func (s *Store) Start(ctx context.Context) error {
	t := time.NewTicker(refreshTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, r := range s.due() {
				_, _ = s.TrustedRoot(r) // the outcome is kept for the next compile
			}
		}
	}
}

// due lists the last request of each repository read over HTTP(S) whose
// refresh interval has passed.
func (s *Store) due() []policy.TUFRepository {
	s.mu.Lock()
	repos := make([]*repo, 0, len(s.repos))
	for _, st := range s.repos {
		repos = append(repos, st)
	}
	s.mu.Unlock()
	now := s.now()
	var out []policy.TUFRepository
	for _, st := range repos {
		st.mu.Lock()
		r, tried := st.last, st.tried
		st.mu.Unlock()
		if r.Location != "" && r.Files == nil && now.Sub(tried) >= refreshOf(r) {
			out = append(out, r)
		}
	}
	return out
}

// refreshOf is how often r is read again.
func refreshOf(r policy.TUFRepository) time.Duration {
	if r.Refresh > 0 {
		return r.Refresh
	}
	return policy.DefaultTUFRefresh
}

func (s *Store) repo(r policy.TUFRepository) *repo {
	k := key(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repos[k]
	if !ok {
		sum := sha256.Sum256([]byte(k))
		st = &repo{dir: filepath.Join(s.dir, hex.EncodeToString(sum[:12]))}
		s.repos[k] = st
	}
	return st
}

// read runs the TUF client workflow once and returns the verified trusted
// root. cached reads only what the cache directory holds, with no request:
// the metadata is verified from the pinned root all the same, and the
// target against its hash.
func (s *Store) read(st *repo, r policy.TUFRepository, cached bool) (policy.TUFTrustedRoot, error) {
	f := &fetcher{client: s.client, files: r.Files, offline: cached}
	base := r.Location
	if r.Files != nil {
		// The air-gapped copy's files are found by name; the URL only
		// has to be one (each repository has a cache directory of its own).
		base = "https://air-gapped.invalid"
	}
	// A new client each time, over the same cache directory: the metadata
	// verified before is what a rollback is checked against, and this
	// read's fetcher is the one used.
	opts := sgtuf.DefaultOptions()
	opts.Root, opts.RepositoryBaseURL, opts.CachePath, opts.Fetcher = r.Root, base, st.dir, f
	opts.CacheValidity, opts.ForceCache = sgtuf.NoCache, cached
	client, err := sgtuf.New(opts)
	var data []byte
	if err == nil {
		data, err = client.GetTarget(Target)
	}
	if err != nil {
		return policy.TUFTrustedRoot{}, classify(r.Location, f, err)
	}
	expires, err := expiry(filepath.Join(st.dir, sgtuf.URLToPath(base)))
	if err != nil {
		return policy.TUFTrustedRoot{}, fmt.Errorf("%w: TUF repository %s: %w", policy.ErrTrustedRootRefused, r.Location, err)
	}
	sum := sha256.Sum256(data)
	return policy.TUFTrustedRoot{JSON: data, Digest: "sha256:" + hex.EncodeToString(sum[:]), Expires: expires}, nil
}

// classify says whether a failed read could not reach the repository
// (unavailable) or read something that did not verify (refused).
func classify(location string, f *fetcher, err error) error {
	if f.unreachable != nil || errors.Is(err, &metadata.ErrDownloadHTTP{}) {
		return fmt.Errorf("%w: TUF repository %s: %w", policy.ErrTrustedRootUnavailable, location, err)
	}
	return fmt.Errorf("%w: TUF repository %s: %w", policy.ErrTrustedRootRefused, location, err)
}

// expiry is the earliest expiry of the top-level metadata the client
// verified and kept in dir: past it, the trusted root they vouch for is not
// used (FRS-02: caching an expired input must not make it valid).
func expiry(dir string) (time.Time, error) {
	var earliest time.Time
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		b, err := os.ReadFile(filepath.Join(dir, role+".json"))
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the verified %s metadata: %w", role, err)
		}
		var m struct {
			Signed struct {
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Signed.Expires.IsZero() {
			return time.Time{}, fmt.Errorf("the verified %s metadata has no expiry", role)
		}
		if earliest.IsZero() || m.Signed.Expires.Before(earliest) {
			earliest = m.Signed.Expires
		}
	}
	return earliest, nil
}

// fetcher reads a repository's files over HTTP, or by name from an
// air-gapped copy, and notes a failure to reach the repository.
type fetcher struct {
	client      *http.Client
	files       func(name string) ([]byte, error)
	offline     bool // every download fails: only the cache is read
	unreachable error
}

// DownloadFile reads at most maxLength bytes of urlPath. A file missing
// from an air-gapped copy is a 404, as the client expects at the end of the
// root rotations.
func (f *fetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	if f.offline {
		f.unreachable = errors.New("reading the cache only")
		return nil, f.unreachable
	}
	if f.files != nil {
		b, err := f.files(path.Base(urlPath))
		if err != nil {
			return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: path.Base(urlPath)}
		}
		if int64(len(b)) > maxLength {
			return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: %d bytes exceed %d", path.Base(urlPath), len(b), maxLength)}
		}
		return b, nil
	}
	resp, err := f.client.Get(urlPath)
	if err != nil {
		f.unreachable = err
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 500 {
			f.unreachable = fmt.Errorf("%s: %s", urlPath, resp.Status)
		}
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: urlPath}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		f.unreachable = err
		return nil, err
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than %d bytes", urlPath, maxLength)}
	}
	return b, nil
}
