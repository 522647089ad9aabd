package chart_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chartproof/chartproof/internal/chart"
	"github.com/chartproof/chartproof/internal/testchart"
)

var update = flag.Bool("update", false, "rewrite the seed archives in testdata/")

// seed is an archive kept in testdata/ to seed the fuzz targets, with the
// outcome Load must give it.
type seed struct {
	file    string
	archive builder
	want    error // nil: the archive loads
}

func seeds() []seed {
	dependent := chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()})
	return []seed{
		{file: "hello.tgz", archive: tgz(hello())},
		{file: "subchart.tgz", archive: func(t *testing.T) []byte {
			return tgz(plus(dependent, file("hello/charts/sub-0.1.0.tgz", subArchive(t))))(t)
		}},
		{file: "subchart-dir.tgz", archive: tgz(plus(dependent, chartIn("hello/charts/sub", "sub", nil)...))},
		{file: "missing-dependency.tgz", archive: tgz(dependent), want: chart.ErrInvalidChart},
		{file: "symlink.tgz", archive: tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: '2', Linkname: "/etc/passwd"})), want: chart.ErrInvalidChart},
		{file: "traversal.tgz", archive: tgz(plus(hello(), file("hello/templates/../../x.yaml", "x"))), want: chart.ErrInvalidChart},
		{file: "duplicate.tgz", archive: tgz(plus(hello(), file("hello/Chart.yaml", "name: evil\n"))), want: chart.ErrInvalidChart},
		{file: "case-fold.tgz", archive: tgz(plus(hello(), file("hello/Values.yaml", "x: 1\n"))), want: chart.ErrInvalidChart},
		{file: "two-tops.tgz", archive: tgz(plus(hello(), file("other/x", "x"))), want: chart.ErrInvalidChart},
		{file: "pax-path.tgz", archive: withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"path": "hello/templates/evil.yaml"})), file("hello/files/x", "x")}, hello()...), 'x'), want: chart.ErrInvalidChart},
		{file: "bad-name.tgz", archive: tgz(chartIn("Hello_World", "Hello_World", nil)), want: chart.ErrInvalidChart},
		{file: "alias-bomb.tgz", archive: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": laughs(9, 9)})), want: chart.ErrLimitExceeded},
		{file: "trailing-garbage.tgz", archive: then(tgz(hello()), bytesOf([]byte("garbage"))), want: chart.ErrInvalidChart},
	}
}

// TestSeeds checks that each seed archive in testdata/ still gives its
// outcome; with -update it rewrites them first.
func TestSeeds(t *testing.T) {
	for _, s := range seeds() {
		t.Run(s.file, func(t *testing.T) {
			path := filepath.Join("testdata", s.file)
			if *update {
				if err := os.WriteFile(path, s.archive(t), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			archive, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestSeeds -update to write the seeds)", err)
			}
			if _, err := chart.Load(archive); !errors.Is(err, s.want) {
				t.Errorf("Load(%s) = %v, want %v", s.file, err, s.want)
			}
		})
	}
}

// seedArchives returns the seed archives in testdata/.
func seedArchives(f *testing.F) [][]byte {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.tgz"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed archives in testdata/ (%v); run go test -run TestSeeds -update", err)
	}
	var archives [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		archives = append(archives, data)
	}
	return archives
}

func FuzzLoad(f *testing.F) {
	for _, a := range seedArchives(f) {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		checkLoad(t, archive)
	})
}

// FuzzTarEntries fuzzes the tar stream inside the gzip layer, which
// mutations of compressed bytes rarely reach.
func FuzzTarEntries(f *testing.F) {
	for _, a := range seedArchives(f) {
		zr, err := gzip.NewReader(bytes.NewReader(a))
		if err != nil {
			f.Fatal(err)
		}
		zr.Multistream(false)
		tarball, err := io.ReadAll(zr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tarball)
	}
	f.Fuzz(func(t *testing.T, tarball []byte) {
		archive, err := testchart.Gzip(tarball)
		if err != nil {
			t.Fatal(err)
		}
		checkLoad(t, archive)
	})
}

var helmName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// checkLoad checks what holds for any input: Load returns a chart or an
// error wrapping a sentinel, never both, and a chart it returns is valid,
// well named, and carries every dependency it declares.
func checkLoad(t *testing.T, archive []byte) {
	c, err := chart.Load(archive)
	if err != nil {
		if c != nil {
			t.Errorf("Load returned a chart and the error %v", err)
		}
		if !errors.Is(err, chart.ErrInvalidChart) && !errors.Is(err, chart.ErrLimitExceeded) {
			t.Errorf("error %v wraps neither ErrInvalidChart nor ErrLimitExceeded", err)
		}
		if !strings.HasPrefix(err.Error(), "chart: ") {
			t.Errorf("error %q does not start with %q", err, "chart: ")
		}
		return
	}
	if c == nil {
		t.Fatal("Load returned neither a chart nor an error")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("loaded chart does not validate: %v", err)
	}
	if !helmName.MatchString(c.Name()) {
		t.Errorf("loaded chart is named %q, outside Helm's naming rule", c.Name())
	}
	vendored := make(map[string]bool)
	for _, d := range c.Dependencies() {
		vendored[d.Name()] = true
	}
	for _, d := range c.Metadata.Dependencies {
		if !vendored[d.Name] {
			t.Errorf("loaded chart declares dependency %q but does not carry it", d.Name)
		}
	}
}
