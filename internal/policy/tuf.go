package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	chartproofv1 "github.com/chartproof/chartproof/api/v1alpha1"
)

// PublicGoodTUF is the Sigstore public-good TUF repository, the one a tuf
// reference without url or configMapRef names.
const PublicGoodTUF = "https://tuf-repo-cdn.sigstore.dev"

// DefaultTUFRefresh is how often a TUF repository is read again when its
// reference names no interval.
const DefaultTUFRefresh = 5 * time.Minute

// MinTUFRefresh is the shortest refresh interval a tuf reference may set.
const MinTUFRefresh = 30 * time.Second

// Why a trusted root could not be had from a TUF repository. Compile's
// errors wrap them; the reconciler reports each with its reason code.
var (
	// ErrTrustedRootUnavailable: the repository could not be read, and
	// nothing read from it before verified.
	ErrTrustedRootUnavailable = errors.New("trusted root unavailable")
	// ErrTrustedRootRefused: what the repository serves did not verify,
	// and no trusted root verified before is still valid.
	ErrTrustedRootRefused = errors.New("trusted root refused")
)

// TUFRepository is what a TUF client needs to read a trusted root.
type TUFRepository struct {
	// Location is the repository's URL, or "configMap namespace/name" for
	// an air-gapped copy.
	Location string
	// Root is the root.json the client starts from; empty for the
	// public-good repository, whose root the client ships.
	Root []byte
	// Files reads a file of an air-gapped copy by its name; nil for a
	// repository read over HTTP(S).
	Files func(name string) ([]byte, error)
	// Refresh is how often the repository is read again; zero means
	// DefaultTUFRefresh.
	Refresh time.Duration
}

// TUFTrustedRoot is a trusted root a TUF repository served and the client
// verified.
type TUFTrustedRoot struct {
	JSON   []byte
	Digest string // "sha256:<hex>" of JSON
	// Expires is the earliest expiry of the metadata that vouched for it.
	Expires time.Time
	// Stale, when set, says why the repository could not be read again:
	// this is the last trusted root verified, its metadata not yet expired.
	Stale string
}

// TUFReader is a Reader that can also read TUF repositories. A Reader
// without it refuses tuf references.
type TUFReader interface {
	TUFTrustedRoot(repo TUFRepository) (TUFTrustedRoot, error)
}

// tufRepository compiles a tuf reference into what the client needs,
// reading its root.json and, for an air-gapped copy, naming its ConfigMap.
func tufRepository(ref Ref, t chartproofv1.TUFRepositoryReference, read Reader) (TUFRepository, error) {
	out := TUFRepository{Location: t.URL, Refresh: DefaultTUFRefresh}
	if t.RefreshInterval != nil {
		if t.RefreshInterval.Duration < MinTUFRefresh {
			return TUFRepository{}, fmt.Errorf("tuf refreshInterval %s is below %s", t.RefreshInterval.Duration, MinTUFRefresh)
		}
		out.Refresh = t.RefreshInterval.Duration
	}
	switch {
	case t.URL != "" && t.ConfigMapRef != nil:
		return TUFRepository{}, errors.New("tuf sets both url and configMapRef")
	case t.URL != "" && !strings.HasPrefix(t.URL, "https://") && !strings.HasPrefix(t.URL, "http://"):
		return TUFRepository{}, fmt.Errorf("tuf url %q is not an http(s) URL", t.URL)
	case t.ConfigMapRef != nil:
		ns, err := resolveNamespace(ref, "configMapRef", t.ConfigMapRef.Namespace, t.ConfigMapRef.Name)
		if err != nil {
			return TUFRepository{}, err
		}
		if read == nil {
			return TUFRepository{}, fmt.Errorf("tuf configMap %s/%s: nothing can be read here", ns, t.ConfigMapRef.Name)
		}
		name := t.ConfigMapRef.Name
		out.Location = "configMap " + ns + "/" + name
		out.Files = func(file string) ([]byte, error) { return read.ConfigMap(ns, name, file) }
	case t.URL == "":
		out.Location = PublicGoodTUF
	}
	if t.Root == nil {
		if out.Location != PublicGoodTUF {
			return TUFRepository{}, fmt.Errorf("tuf repository %s: no root: a repository other than the public-good one needs the root.json to start from", out.Location)
		}
		return out, nil
	}
	key := t.Root.Key
	if key == "" {
		key = "root.json"
	}
	root, _, err := readObjectKey(ref, "tuf root", "configMap", t.Root.Namespace, t.Root.Name, key, read)
	if err != nil {
		return TUFRepository{}, err
	}
	out.Root = root
	return out, nil
}

// readTUFRoot reads the trusted root a tuf reference names, as the reader's
// TUF client verified it.
func readTUFRoot(ref Ref, t chartproofv1.TUFRepositoryReference, read Reader) ([]byte, string, error) {
	repo, err := tufRepository(ref, t, read)
	if err != nil {
		return nil, "", err
	}
	got, err := readTUF(read, repo)
	if err != nil {
		return nil, "", err
	}
	source := "tuf " + repo.Location
	if got.Stale != "" {
		source += " (last verified; reading it again failed)"
	}
	return got.JSON, source, nil
}

// isPublicGoodTUF reports whether a trusted root reference names the
// public-good TUF repository from the root chartproof ships: the one whose
// trusted root chartproof also embeds.
func isPublicGoodTUF(tr *chartproofv1.TrustedRootReference) bool {
	return tr != nil && tr.TUF != nil && tr.TUF.ConfigMapRef == nil && tr.TUF.Root == nil &&
		(tr.TUF.URL == "" || tr.TUF.URL == PublicGoodTUF)
}

// readTUF asks read's TUF client for repo's trusted root; a Reader without
// one reads none.
func readTUF(read Reader, repo TUFRepository) (TUFTrustedRoot, error) {
	tr, ok := read.(TUFReader)
	if !ok {
		return TUFTrustedRoot{}, fmt.Errorf("%w: tuf repository %s: no TUF repository can be read here", ErrTrustedRootUnavailable, repo.Location)
	}
	return tr.TUFTrustedRoot(repo)
}
