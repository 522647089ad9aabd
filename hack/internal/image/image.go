// Package image builds chartproof's container image without a Docker
// engine (`make image` runs hack/image; the demo ships chartproof with it),
// and chartproof's own chart naming that image by digest (chart.go, ship.go).
//
// The image holds the static chartproof binary (CGO_ENABLED=0, -trimpath,
// no build ID, no symbol table) at /chartproof, the passwd and group entries
// of hack/image/rootfs (a non-root user, 65532), and nothing else: no base
// image, so no shell, no package manager and no base to pin or patch. The
// binary trusts the system's root certificates where it finds them and
// Mozilla's, compiled in (golang.org/x/crypto/x509roots/fallback, the
// fallbackroots build tag: roots.go), where it does not.
//
// It is reproducible: every file's time, owner and order are fixed, and the
// image's creation time is SOURCE_DATE_EPOCH (the last commit's time in
// `make image`), so the same source and Go version give the same digest.
// Build writes an OCI image layout (an index with one image per platform)
// and, with Push, pushes it; the Dockerfile at the top of the repository
// builds the same image with docker from the same binary and files
// (TestDockerfileEquivalent).
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed parts; the Dockerfile says the same.
const (
	binaryPath = "/chartproof"
	user       = "65532:65532"
	source     = "https://github.com/chartproof/chartproof"
)

// Options says what Build builds and where it goes.
type Options struct {
	Platforms []string // os/arch
	Out       string   // OCI image layout directory; replaced
	Push      string   // reference to push to; "" pushes nothing
	Insecure  bool
	Version   string
	// Binaries, when set, receives each platform's binary at
	// Binaries/<os>_<arch>/chartproof, for the Dockerfile.
	Binaries string
	// Module is the directory of the chartproof module; "" is the
	// working directory.
	Module string
	// Created is the image's creation time and every file's; zero is
	// SOURCE_DATE_EPOCH, or the Unix epoch when that is unset.
	Created time.Time
}

// Build builds the image for every platform, writes the index to
// opts.Out, pushes it when opts.Push is set, and returns its digest.
func Build(ctx context.Context, opts Options) (v1.Hash, error) {
	created, err := createdTime(opts.Created)
	if err != nil {
		return v1.Hash{}, err
	}
	revision := gitRevision(opts.Module)
	version := opts.Version
	if version == "" {
		version = revision
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range opts.Platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return v1.Hash{}, err
		}
		img, err := platformImage(ctx, opts.Module, opts.Binaries, *plat, created, revision, version)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	if err := os.RemoveAll(opts.Out); err != nil {
		return v1.Hash{}, err
	}
	if _, err := layout.Write(opts.Out, idx); err != nil {
		return v1.Hash{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if opts.Push != "" {
		var nameOpts []name.Option
		if opts.Insecure {
			nameOpts = append(nameOpts, name.Insecure)
		}
		ref, err := name.ParseReference(opts.Push, nameOpts...)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return digest, nil
}

// createdTime is t, else SOURCE_DATE_EPOCH, else the Unix epoch.
func createdTime(t time.Time) (time.Time, error) {
	if !t.IsZero() {
		return t.UTC(), nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// gitRevision is the commit of module's checkout, "unknown" outside one.
func gitRevision(module string) string {
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = module
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// platformImage builds the binary for plat and the image around it.
func platformImage(ctx context.Context, module, binaries string, plat v1.Platform, created time.Time, revision, version string) (v1.Image, error) {
	binary, err := buildBinary(ctx, module, plat)
	if err != nil {
		return nil, err
	}
	if binaries != "" {
		dir := filepath.Join(binaries, plat.OS+"_"+plat.Architecture)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "chartproof"), binary, 0o755); err != nil {
			return nil, err
		}
	}
	layerTar, err := rootfsTar(filepath.Join(module, "hack", "image", "rootfs"), binary, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: created},
		CreatedBy: "hack/image: " + binaryPath + " and hack/image/rootfs",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = plat.OS, plat.Architecture, plat.Variant
	cfg.Created = v1.Time{Time: created}
	cfg.Config.User = user
	cfg.Config.Entrypoint = []string{binaryPath}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.source":   source,
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.created":  created.Format(time.RFC3339),
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	return mutate.ConfigFile(img, cfg)
}

// buildBinary builds the static chartproof binary for plat and returns it.
func buildBinary(ctx context.Context, module string, plat v1.Platform) ([]byte, error) {
	dir, err := os.MkdirTemp("", "chartproof-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "chartproof")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "fallbackroots", "-ldflags=-s -w -buildid=", "-o", out, ".")
	cmd.Dir = module
	// Everything that changes the code generated is set, whatever the
	// caller's environment says: the same source gives the same binary.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+plat.OS, "GOARCH="+plat.Architecture, "GOFLAGS=-mod=readonly",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	if plat.Variant != "" && plat.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(plat.Variant, "v"))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return os.ReadFile(out)
}

// rootfsTar returns the layer's tar: the directories and files of rootfs
// (root-owned, 0755 and 0644) and binary at binaryPath (0755), in
// lexical order, every time set to mtime, no user or group names.
func rootfsTar(rootfs string, binary []byte, mtime time.Time) ([]byte, error) {
	type entry struct {
		name string
		dir  bool
		data []byte
		mode int64
	}
	entries := []entry{{name: strings.TrimPrefix(binaryPath, "/"), data: binary, mode: 0o755}}
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == rootfs {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: rel + "/", dir: true, mode: 0o755})
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: rel, data: data, mode: 0o644})
		default:
			return fmt.Errorf("%s: only directories and regular files belong in the image", path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
