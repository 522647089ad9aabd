package image

import (
	"archive/tar"
	"bufio"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const module = "../../.."

// TestImage builds the image for this machine's platform twice: the same
// source and time give the same digest (and another time another, so the
// comparison can fail). The image runs as a numeric non-root user, holds
// only the static binary and the passwd and group files, root-owned, at the
// fixed time; the binary was built with -trimpath, without cgo or a symbol
// table, and runs. Pushed to a registry on loopback, the registry serves it under the
// same digest.
func TestImage(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	pushTo := strings.TrimPrefix(srv.URL, "http://") + "/chartproof/chartproof:test"
	build := func(created time.Time, push string) (v1.Hash, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "layout")
		d, err := Build(context.Background(), Options{Platforms: []string{platform}, Out: out, Module: module, Created: created, Push: push, Insecure: true, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return d, out
	}
	first, _ := build(created, pushTo)
	second, _ := build(created, "")
	if first != second {
		t.Errorf("two builds of the same source at the same time: %s and %s, want one digest", first, second)
	}
	if later, _ := build(created.Add(time.Second), ""); later == first {
		t.Errorf("a build at another time has the same digest %s: the time is not in the image", later)
	}

	ref, err := name.ParseReference(pushTo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d != first {
		t.Fatalf("the registry serves %s, built %s", d, first)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 || manifest.Manifests[0].Platform == nil || manifest.Manifests[0].Platform.String() != platform {
		t.Fatalf("index manifests %+v, want one for %s", manifest.Manifests, platform)
	}
	img, err := idx.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/chartproof"}) || !cfg.Created.Time.Equal(created) ||
		cfg.OS+"/"+cfg.Architecture != platform || cfg.Config.Labels["org.opencontainers.image.version"] != "test" {
		t.Errorf("config: user %q entrypoint %q created %v platform %s/%s labels %v", cfg.Config.User, cfg.Config.Entrypoint, cfg.Created, cfg.OS, cfg.Architecture, cfg.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	binary := filepath.Join(t.TempDir(), "chartproof")
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(created) || hdr.Uname != "" {
			t.Errorf("%s: owner %d:%d (%q), time %v; want root's, at %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.ModTime, created)
		}
		switch hdr.Name {
		case "chartproof":
			if hdr.Mode != 0o755 {
				t.Errorf("chartproof: mode %o, want 755", hdr.Mode)
			}
			f, err := os.OpenFile(binary, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case "etc/passwd":
			sc := bufio.NewScanner(tr)
			found := false
			for sc.Scan() {
				found = found || strings.HasPrefix(sc.Text(), "nonroot:x:65532:65532:")
			}
			if !found {
				t.Error("etc/passwd has no nonroot user 65532")
			}
		}
	}
	if want := []string{"chartproof", "etc/", "etc/group", "etc/passwd"}; !slices.Equal(names, want) {
		t.Errorf("the layer holds %q, want %q", names, want)
	}

	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings %v, want CGO_ENABLED=0 and -trimpath", settings)
	}
	if !slices.ContainsFunc(info.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("the binary does not carry the fallback root certificates (golang.org/x/crypto/x509roots/fallback)")
	}
	if f, err := elf.Open(binary); err != nil {
		t.Fatal(err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary asks for a dynamic loader: the image has none")
			}
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table: built without -s")
		}
		f.Close()
	}
	out, err := exec.Command(binary, "verify", "-h").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "Usage: chartproof verify") {
		t.Errorf("the image's binary: %v\n%s", err, out)
	}
}

// TestDockerfileEquivalent: the Dockerfile builds what Build builds: from
// nothing, the same files at the same paths, the same user and entrypoint.
func TestDockerfileEquivalent(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(module, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"FROM scratch",
		"ARG TARGETARCH",
		"COPY hack/image/rootfs/ /",
		"COPY bin/linux_${TARGETARCH}/chartproof " + binaryPath,
		"USER " + user,
		`ENTRYPOINT ["` + binaryPath + `"]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Dockerfile instructions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
