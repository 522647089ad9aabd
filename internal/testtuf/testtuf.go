// Package testtuf builds TUF repositories for tests with go-tuf v2's
// metadata package and real ed25519 keys: a repository serving a Sigstore
// trusted_root.json target, published again, its root rotated, its files
// served on loopback or listed for an air-gapped ConfigMap, and broken the
// ways THREATS FRS-02 and FRS-04 describe (expired, rolled back, signed by
// the wrong key).
package testtuf

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TargetName is the target a Sigstore repository serves.
const TargetName = "trusted_root.json"

// Repo is a TUF repository with consistent snapshots: its files are
// "N.root.json", "timestamp.json", "N.snapshot.json", "N.targets.json" and
// "targets/<sha256>.trusted_root.json". Safe for concurrent use.
type Repo struct {
	mu        sync.Mutex
	keys      map[string]ed25519.PrivateKey // by role
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	files     map[string][]byte
	initial   []byte
	down      bool
	// TimestampLifetime is how long each new timestamp is valid (a day by
	// default); set it before Publish.
	TimestampLifetime time.Duration
}

// New makes a repository whose first targets serve trustedRoot, with one
// key per top-level role.
func New(trustedRoot []byte) (*Repo, error) {
	r := &Repo{keys: map[string]ed25519.PrivateKey{}, files: map[string][]byte{}, TimestampLifetime: 24 * time.Hour}
	r.root = metadata.Root(time.Now().Add(365 * 24 * time.Hour))
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if err := r.newKey(role); err != nil {
			return nil, err
		}
	}
	if err := r.signRoot(nil); err != nil {
		return nil, err
	}
	r.initial = r.files["1.root.json"]
	r.targets = metadata.Targets(time.Now().Add(7 * 24 * time.Hour))
	r.targets.Signed.Version = 0
	r.snapshot = metadata.Snapshot(time.Now().Add(7 * 24 * time.Hour))
	r.snapshot.Signed.Version = 0
	r.timestamp = metadata.Timestamp(time.Now().Add(r.TimestampLifetime))
	r.timestamp.Signed.Version = 0
	return r, r.Publish(trustedRoot)
}

// newKey gives role a new key in the root, replacing its old ones.
func (r *Repo) newKey(role string) error {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	for _, id := range r.root.Signed.Roles[role].KeyIDs {
		if err := r.root.Signed.RevokeKey(id, role); err != nil {
			return err
		}
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return err
	}
	if err := r.root.Signed.AddKey(key, role); err != nil {
		return err
	}
	r.keys[role] = priv
	return nil
}

// Root returns the first root.json: what a client pins.
func (r *Repo) Root() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.initial...)
}

// Publish serves trustedRoot as the target from new targets, snapshot and
// timestamp versions.
func (r *Repo) Publish(trustedRoot []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	tf, err := metadata.TargetFile().FromBytes(TargetName, trustedRoot, "sha256")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(trustedRoot)
	r.files["targets/"+hex.EncodeToString(sum[:])+"."+TargetName] = append([]byte(nil), trustedRoot...)
	r.targets.Signed.Targets[TargetName] = tf
	r.targets.Signed.Version++
	if err := sign(r.targets, r.keys[metadata.TARGETS]); err != nil {
		return err
	}
	if err := r.put(fmt.Sprintf("%d.targets.json", r.targets.Signed.Version), r.targets); err != nil {
		return err
	}
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snapshot.Signed.Version++
	if err := sign(r.snapshot, r.keys[metadata.SNAPSHOT]); err != nil {
		return err
	}
	if err := r.put(fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version), r.snapshot); err != nil {
		return err
	}
	return r.newTimestamp(time.Now().Add(r.TimestampLifetime))
}

// newTimestamp signs a new timestamp version expiring at expires.
func (r *Repo) newTimestamp(expires time.Time) error {
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = expires
	if err := sign(r.timestamp, r.keys[metadata.TIMESTAMP]); err != nil {
		return err
	}
	return r.put("timestamp.json", r.timestamp)
}

// ExpireTimestamp serves a new timestamp that expired a minute ago (FRS-02:
// a frozen repository).
func (r *Repo) ExpireTimestamp() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.newTimestamp(time.Now().Add(-time.Minute))
}

// RotateRoot signs a new root version giving every role a new key, with the
// old root keys and the new one (the TUF rotation a client follows), and
// publishes trustedRoot under the new keys.
func (r *Repo) RotateRoot(trustedRoot []byte) error {
	r.mu.Lock()
	old := r.keys[metadata.ROOT]
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if err := r.newKey(role); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	r.root.Signed.Version++
	err := r.signRoot(old)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.Publish(trustedRoot)
}

// SetThreshold signs a new root version, with the same keys, in which
// role's threshold is n (THREATS POL-01, go-tuf GHSA-fphv-w9fq-2525: a
// threshold of 0 must not disable verification).
func (r *Repo) SetThreshold(role string, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.root.Signed.Roles[role].Threshold = n
	r.root.Signed.Version++
	return r.signRoot(nil)
}

// signRoot signs the root with its key (and with previous, the key of the
// version before, when rotating) and serves it.
func (r *Repo) signRoot(previous ed25519.PrivateKey) error {
	r.root.ClearSignatures()
	for _, k := range []ed25519.PrivateKey{previous, r.keys[metadata.ROOT]} {
		if k == nil {
			continue
		}
		s, err := signature.LoadSigner(k, crypto.Hash(0))
		if err != nil {
			return err
		}
		if _, err := r.root.Sign(s); err != nil {
			return err
		}
	}
	return r.put(fmt.Sprintf("%d.root.json", r.root.Signed.Version), r.root)
}

// SignTimestampWith signs a new timestamp with a key the root does not
// list (FRS-04: a compromised mirror cannot sign for the repository).
func (r *Repo) SignTimestampWith() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, rogue, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	r.timestamp.Signed.Version++
	if err := sign(r.timestamp, rogue); err != nil {
		return err
	}
	return r.put("timestamp.json", r.timestamp)
}

// Files returns a copy of the repository's files, by path.
func (r *Repo) Files() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.files)
}

// SetFiles replaces the repository's files, as a copy saved earlier
// (FRS-04: a mirror serving an older state, a rollback).
func (r *Repo) SetFiles(files map[string][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files = maps.Clone(files)
}

// ConfigMapData returns the files as an air-gapped ConfigMap holds them:
// keyed by file name, the target's directory dropped.
func (r *Repo) ConfigMapData() map[string]string {
	out := map[string]string{}
	for p, b := range r.Files() {
		out[path.Base(p)] = string(b)
	}
	return out
}

// SetDown makes the server answer 503 to everything while down.
func (r *Repo) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// ServeHTTP serves the repository's files; a missing one is a 404.
func (r *Repo) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	b, ok := r.files[strings.TrimPrefix(req.URL.Path, "/")]
	down := r.down
	r.mu.Unlock()
	switch {
	case down:
		http.Error(w, "down", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, req)
	default:
		_, _ = w.Write(b)
	}
}

// Serve serves the repository on loopback; close the server after use.
func (r *Repo) Serve() *httptest.Server {
	return httptest.NewServer(r)
}

func (r *Repo) put(name string, m interface{ ToBytes(bool) ([]byte, error) }) error {
	b, err := m.ToBytes(true)
	if err != nil {
		return err
	}
	r.files[name] = b
	return nil
}

type signable interface {
	ClearSignatures()
	Sign(signature.Signer) (*metadata.Signature, error)
}

func sign(m signable, key ed25519.PrivateKey) error {
	s, err := signature.LoadSigner(key, crypto.Hash(0))
	if err != nil {
		return err
	}
	m.ClearSignatures()
	_, err = m.Sign(s)
	return err
}
