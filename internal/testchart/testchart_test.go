package testchart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// sampleDir is the copy of the chart that the demo packages with helm.
const sampleDir = "../../config/samples/chart/hello"

func TestSampleMatchesEmbedded(t *testing.T) {
	embedded, err := fs.Sub(hello, "hello")
	if err != nil {
		t.Fatal(err)
	}
	got := readTree(t, os.DirFS(sampleDir))
	want := readTree(t, embedded)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s differs from internal/testchart/hello (-embedded +sample):\n%s", sampleDir, diff)
	}
}

func readTree(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	files := make(map[string]string)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestArchive(t *testing.T) {
	tests := []struct {
		name, chart, version string
	}{
		{name: "canonical", chart: "hello", version: "0.1.0"},
		{name: "renamed", chart: "other", version: "1.2.3-rc.1+build.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive, err := Archive(tt.chart, tt.version)
			if err != nil {
				t.Fatal(err)
			}
			c, err := loader.LoadArchive(bytes.NewReader(archive))
			if err != nil {
				t.Fatalf("helm cannot load the archive: %v", err)
			}
			if c.Name() != tt.chart || c.Metadata.Version != tt.version {
				t.Errorf("chart is %s %s, want %s %s", c.Name(), c.Metadata.Version, tt.chart, tt.version)
			}
			if got, want := c.Values["message"], "hello"; got != want {
				t.Errorf("values message is %v, want %q", got, want)
			}
			var templates []string
			for _, f := range c.Templates {
				templates = append(templates, f.Name)
			}
			wantTemplates := []string{
				"templates/NOTES.txt",
				"templates/_helpers.tpl",
				"templates/configmap.yaml",
				"templates/deployment.yaml",
				"templates/service.yaml",
				"templates/serviceaccount.yaml",
				"templates/tests/test-connection.yaml",
			}
			if diff := cmp.Diff(wantTemplates, templates); diff != "" {
				t.Errorf("templates (-want +got):\n%s", diff)
			}

			var names []string
			for _, h := range readHeaders(t, archive) {
				names = append(names, h.Name)
				if h.Typeflag != tar.TypeReg {
					t.Errorf("entry %q has type %q, want a regular file", h.Name, h.Typeflag)
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("entries %q are not sorted", names)
			}
			for _, n := range names {
				if dir, _, _ := strings.Cut(n, "/"); dir != tt.chart {
					t.Errorf("entry %q is not under %q", n, tt.chart+"/")
				}
			}
		})
	}
}

func TestArchiveIsDeterministic(t *testing.T) {
	first, err := Archive("hello", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	second, err := Archive("hello", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("two archives of the same chart differ, want identical bytes")
	}
	other, err := Archive("hello", "0.1.1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Error("archives of versions 0.1.0 and 0.1.1 are identical, want them to differ")
	}
}

func TestBuildKeepsEntriesAsGiven(t *testing.T) {
	entries := []Entry{
		{Name: "x/b", Body: "second"},
		{Name: "x/a", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "x/b", Body: "duplicate"},
		{Name: "x/d/", Typeflag: tar.TypeDir},
		{Name: "x/e", Body: "executable", Mode: 0o755},
	}
	archive, err := Build(entries)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Name, Body, Linkname string
		Typeflag             byte
		Mode                 int64
	}
	var gotEntries []got
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		gotEntries = append(gotEntries, got{h.Name, string(body), h.Linkname, h.Typeflag, h.Mode})
	}
	want := []got{
		{"x/b", "second", "", tar.TypeReg, 0o644},
		{"x/a", "", "/etc/passwd", tar.TypeSymlink, 0o644},
		{"x/b", "duplicate", "", tar.TypeReg, 0o644},
		{"x/d/", "", "", tar.TypeDir, 0o755},
		{"x/e", "executable", "", tar.TypeReg, 0o755},
	}
	if diff := cmp.Diff(want, gotEntries); diff != "" {
		t.Errorf("entries read back (-want +got):\n%s", diff)
	}
}

func readHeaders(t *testing.T, archive []byte) []*tar.Header {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var headers []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
	}
}
