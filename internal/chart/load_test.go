package chart_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartproof/chartproof/internal/chart"
	"github.com/chartproof/chartproof/internal/limits"
	"github.com/chartproof/chartproof/internal/testchart"
)

// dependsOnSub is a Chart.yaml of hello that declares the dependency sub.
func dependsOnSub() string {
	return testchart.Files("hello", "0.1.0")["Chart.yaml"] + `
dependencies:
  - name: sub
    version: 0.1.0
    repository: oci://registry.example/charts
`
}

// subArchive returns the archive of the hello chart named sub.
func subArchive(t *testing.T) string {
	t.Helper()
	archive, err := testchart.Archive("sub", "0.1.0")
	must(t, err)
	return string(archive)
}

// TestLoadMatchesHelm loads well-formed charts and compares the result with
// what Helm's own archive loader makes of the same bytes.
func TestLoadMatchesHelm(t *testing.T) {
	tests := []struct {
		name     string
		archive  builder
		wantDeps []string
	}{
		{
			name:    "hello",
			archive: tgz(hello()),
		},
		{
			name: "directory entries",
			archive: tgz(slices.Concat(
				[]testchart.Entry{
					{Name: "hello/", Typeflag: tar.TypeDir},
					{Name: "hello/templates/", Typeflag: tar.TypeDir},
					{Name: "hello/templates/tests/", Typeflag: tar.TypeDir},
				},
				hello(),
			)),
		},
		{
			name:    "byte order mark",
			archive: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "\xef\xbb\xbfmessage: bom\n"})),
		},
		{
			name: "vendored subchart archive",
			archive: func(t *testing.T) []byte {
				return tgz(plus(chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()}), file("hello/charts/sub-0.1.0.tgz", subArchive(t))))(t)
			},
			wantDeps: []string{"sub"},
		},
		{
			name:     "vendored subchart directory",
			archive:  tgz(slices.Concat(chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()}), chartIn("hello/charts/sub", "sub", nil))),
			wantDeps: []string{"sub"},
		},
		{
			name: "ignored and provenance files in charts/",
			archive: tgz(plus(hello(),
				file("hello/charts/.gitkeep", ""),
				file("hello/charts/_notes/readme", "ignored by helm"),
				file("hello/charts/sub-0.1.0.tgz.prov", "provenance"),
			)),
		},
		{
			name:    "long path held in a PAX record",
			archive: tgz(plus(hello(), file(longName("hello/files/", 300), "long"))),
		},
		{
			name:    "non-ASCII path held in a PAX record",
			archive: tgz(plus(hello(), file("hello/files/café", "coffee"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := tt.archive(t)
			got, err := chart.Load(archive)
			if err != nil {
				t.Fatalf("Load: %v, want a chart", err)
			}
			want, err := loader.LoadArchive(bytes.NewReader(archive))
			if err != nil {
				t.Fatalf("helm's loader: %v", err)
			}
			if diff := cmp.Diff(summarize(want), summarize(got)); diff != "" {
				t.Errorf("chart (-helm +Load):\n%s", diff)
			}
			var deps []string
			for _, d := range got.Dependencies() {
				deps = append(deps, d.Name())
			}
			if diff := cmp.Diff(tt.wantDeps, deps); diff != "" {
				t.Errorf("dependencies (-want +got):\n%s", diff)
			}
		})
	}
}

// summary is what Helm renders from a chart, with subcharts by name.
type summary struct {
	Metadata  *helmchart.Metadata
	Lock      *helmchart.Lock
	Templates []*helmchart.File
	Files     []*helmchart.File
	Values    map[string]any
	Schema    []byte
	Deps      map[string]summary
}

func summarize(c *helmchart.Chart) summary {
	s := summary{Metadata: c.Metadata, Lock: c.Lock, Templates: c.Templates, Files: c.Files, Values: c.Values, Schema: c.Schema}
	for _, d := range c.Dependencies() {
		if s.Deps == nil {
			s.Deps = make(map[string]summary)
		}
		s.Deps[d.Name()] = summarize(d)
	}
	return s
}

func TestLoadLinksSubcharts(t *testing.T) {
	entries := slices.Concat(
		chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()}),
		chartIn("hello/charts/dir", "dir", nil),
		[]testchart.Entry{file("hello/charts/sub-0.1.0.tgz", subArchive(t))},
	)
	c, err := chart.Load(tgz(entries)(t))
	if err != nil {
		t.Fatalf("Load: %v, want a chart", err)
	}
	var names []string
	for _, sub := range c.Dependencies() {
		names = append(names, sub.Name())
		if sub.Parent() != c {
			t.Errorf("subchart %s has parent %v, want the chart", sub.Name(), sub.Parent())
		}
	}
	if diff := cmp.Diff([]string{"dir", "sub"}, names); diff != "" {
		t.Errorf("subcharts (-want +got):\n%s", diff)
	}
}

// refusal is a hostile archive and its control twin: the same archive
// without the attack, which must load, so that the refusal is known to come
// from the attack.
type refusal struct {
	name    string
	attack  builder
	control builder
	want    error
	at      string // the entry or chart the error must name, if any
}

func TestLoadRefuses(t *testing.T) {
	for _, tt := range refusals() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := chart.Load(tt.attack(t))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load(attack) = %v, want an error wrapping %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "chart: ") {
				t.Errorf("error %q does not start with %q", err, "chart: ")
			}
			if tt.at != "" && !strings.Contains(err.Error(), strconv.Quote(tt.at)) {
				t.Errorf("error %q does not name %q", err, tt.at)
			}
			if _, err := chart.Load(tt.control(t)); err != nil {
				t.Errorf("Load(control) = %v, want a chart", err)
			}
		})
	}
}

func refusals() []refusal {
	good := tgz(hello())
	regular := file("hello/files/x", "a regular file")
	return []refusal{
		// Entry types.
		{
			name:    "symbolic link",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "symbolic link over values.yaml",
			attack:  tgz(plus(withoutEntry(hello(), "hello/values.yaml"), testchart.Entry{Name: "hello/values.yaml", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"})),
			control: good,
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		{
			name:    "hard link",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeLink, Linkname: "hello/values.yaml"})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "character device",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeChar})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "block device",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeBlock})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "FIFO",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeFifo})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "GNU sparse file",
			attack:  tgz(plus(hello(), testchart.Entry{Name: "hello/files/x", Typeflag: tar.TypeGNUSparse, Format: tar.FormatGNU})),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "PAX global header",
			attack:  tgz(plus([]testchart.Entry{{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "evil"}}}, hello()...)),
			control: good,
			want:    chart.ErrInvalidChart,
		},

		// PAX records that make tar readers disagree.
		{
			name:    "PAX path record for a short name",
			attack:  withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"path": "hello/templates/evil.yaml"})), regular}, hello()...), tar.TypeXHeader),
			control: withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"path": "hello/templates/evil.yaml"})), regular}, hello()...)),
			want:    chart.ErrInvalidChart, at: "hello/templates/evil.yaml",
		},
		{
			name:    "PAX size record",
			attack:  withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"size": "14"})), regular}, hello()...), tar.TypeXHeader),
			control: withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"size": "14"})), regular}, hello()...)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name:    "PAX sparse records",
			attack:  withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"GNU.sparse.major": "9"})), regular}, hello()...), tar.TypeXHeader),
			control: withPAX(plus([]testchart.Entry{file("hello/files/pax", paxRecords(map[string]string{"GNU.sparse.major": "9"})), regular}, hello()...)),
			want:    chart.ErrInvalidChart, at: "hello/files/x",
		},
		{
			name: "GNU long name over a PAX path record",
			attack: withPAX(plus([]testchart.Entry{
				file("hello/files/pax", paxRecords(map[string]string{"path": "hello/files/" + strings.Repeat("p", 300)})),
				file("hello/files/gnu", "hello/files/"+strings.Repeat("g", 300)+"\x00"),
				regular,
			}, hello()...), tar.TypeXHeader, tar.TypeGNULongName),
			control: withPAX(plus([]testchart.Entry{
				file("hello/files/pax", paxRecords(map[string]string{"path": "hello/files/" + strings.Repeat("p", 300)})),
				file("hello/files/gnu", "hello/files/"+strings.Repeat("g", 300)+"\x00"),
				regular,
			}, hello()...)),
			want: chart.ErrInvalidChart,
		},

		// Names.
		{
			name:    "absolute path",
			attack:  tgz(plus(hello(), file("/etc/passwd", "x"))),
			control: tgz(plus(hello(), file("hello/etc/passwd", "x"))),
			want:    chart.ErrInvalidChart, at: "/etc/passwd",
		},
		{
			name:    "parent directory traversal",
			attack:  tgz(plus(hello(), file("hello/../../etc/passwd", "x"))),
			control: tgz(plus(hello(), file("hello/etc/passwd", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/../../etc/passwd",
		},
		{
			name:    "traversal out of templates",
			attack:  tgz(plus(hello(), file("hello/templates/../../x.yaml", "x"))),
			control: tgz(plus(hello(), file("hello/templates/x.yaml", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/templates/../../x.yaml",
		},
		{
			name:    "backslash",
			attack:  tgz(plus(hello(), file(`hello/templates\..\..\x.yaml`, "x"))),
			control: tgz(plus(hello(), file("hello/templates/x.yaml", "x"))),
			want:    chart.ErrInvalidChart, at: `hello/templates\..\..\x.yaml`,
		},
		{
			name:    "empty segment",
			attack:  tgz(plus(hello(), file("hello//etc/passwd", "x"))),
			control: tgz(plus(hello(), file("hello/etc/passwd", "x"))),
			want:    chart.ErrInvalidChart, at: "hello//etc/passwd",
		},
		{
			name:    "dot segment",
			attack:  tgz(plus(hello(), file("hello/./files/x", "x"))),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/./files/x",
		},
		{
			name:    "windows drive",
			attack:  tgz(plus(hello(), file("hello/C:/x", "x"))),
			control: tgz(plus(hello(), file("hello/C/x", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/C:/x",
		},
		{
			name:    "control character",
			attack:  tgz(plus(hello(), file("hello/files/x\x1b[2J", "x"))),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart, at: "hello/files/x\x1b[2J",
		},
		{
			name:    "invalid UTF-8",
			attack:  tgz(plus(hello(), file("hello/files/x\xff", "x"))),
			control: tgz(plus(hello(), regular)),
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "path longer than the cap",
			attack:  tgz(plus(hello(), file(longName("hello/files/", limits.MaxChartPathBytes+1), "x"))),
			control: tgz(plus(hello(), file(longName("hello/files/", limits.MaxChartPathBytes), "x"))),
			want:    chart.ErrLimitExceeded,
		},
		{
			name:    "path segment longer than a file name",
			attack:  tgz(plus(hello(), file("hello/files/"+strings.Repeat("a", 256), "x"))),
			control: tgz(plus(hello(), file("hello/files/"+strings.Repeat("a", 255), "x"))),
			want:    chart.ErrInvalidChart,
		},

		// Duplicates and collisions.
		{
			name:    "duplicate values.yaml",
			attack:  tgz(plus(hello(), file("hello/values.yaml", "message: evil\n"))),
			control: good,
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		{
			name:    "duplicate Chart.yaml",
			attack:  tgz(plus(hello(), file("hello/Chart.yaml", "name: evil\n"))),
			control: good,
			want:    chart.ErrInvalidChart, at: "hello/Chart.yaml",
		},
		{
			name:    "case-fold duplicate",
			attack:  tgz(plus(hello(), file("hello/templates/ConfigMap.yaml", "x"))),
			control: tgz(plus(hello(), file("hello/templates/configmap2.yaml", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/templates/ConfigMap.yaml",
		},
		{
			name:    "case-fold duplicate directory",
			attack:  tgz(plus(hello(), file("hello/Templates/x.yaml", "x"))),
			control: tgz(plus(hello(), file("hello/templates/x.yaml", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/Templates",
		},
		{
			name:    "duplicate directory entry",
			attack:  tgz(plus([]testchart.Entry{{Name: "hello/", Typeflag: tar.TypeDir}, {Name: "hello/", Typeflag: tar.TypeDir}}, hello()...)),
			control: tgz(plus([]testchart.Entry{{Name: "hello/", Typeflag: tar.TypeDir}}, hello()...)),
			want:    chart.ErrInvalidChart, at: "hello",
		},
		{
			name:    "Kelvin sign folds to k",
			attack:  tgz(plus(hello(), file("hello/files/k", "x"), file("hello/files/\u212a", "x"))),
			control: tgz(plus(hello(), file("hello/files/k", "x"), file("hello/files/j", "x"))),
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "NFC and NFD forms of one name",
			attack:  tgz(plus(hello(), file("hello/files/caf\u00e9", "x"), file("hello/files/cafe\u0301", "x"))),
			control: tgz(plus(hello(), file("hello/files/caf\u00e9", "x"), file("hello/files/cafe", "x"))),
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "file and directory of one name",
			attack:  tgz(plus(hello(), file("hello/templates", "x"))),
			control: tgz(plus(hello(), file("hello/templates.txt", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/templates",
		},
		{
			name:    "two top-level directories",
			attack:  tgz(plus(hello(), file("other/values.yaml", "x"))),
			control: tgz(plus(hello(), file("hello/other/values.yaml", "x"))),
			want:    chart.ErrInvalidChart, at: "other/values.yaml",
		},
		{
			name:    "file outside the top-level directory",
			attack:  tgz(plus([]testchart.Entry{file("Chart.yaml", "name: evil\n")}, hello()...)),
			control: good,
			want:    chart.ErrInvalidChart, at: "Chart.yaml",
		},

		// Sizes and counts.
		{
			name:    "decompression bomb in one file",
			attack:  streamed(hello(), 1, limits.MaxChartFileBytes+1, 0, ""),
			control: streamed(hello(), 1, limits.MaxChartFileBytes, 0, ""),
			want:    chart.ErrLimitExceeded, at: "hello/files/zeros-00",
		},
		{
			name:    "decompression bomb over the total",
			attack:  streamed(hello(), limits.MaxChartBytes/limits.MaxChartFileBytes, limits.MaxChartFileBytes, 0, ""),
			control: streamed(hello(), limits.MaxChartBytes/limits.MaxChartFileBytes-1, limits.MaxChartFileBytes, 0, ""),
			want:    chart.ErrLimitExceeded,
		},
		{
			name:    "zero padding after the tar archive over the total",
			attack:  streamed(hello(), 0, 0, limits.MaxChartBytes, ""),
			control: streamed(hello(), 0, 0, 10240, ""),
			want:    chart.ErrLimitExceeded,
		},
		{
			name:    "data after the tar archive",
			attack:  streamed(hello(), 0, 0, 1024, "hidden"),
			control: streamed(hello(), 0, 0, 1024, ""),
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "too many entries",
			attack:  tgz(plus(hello(), emptyFiles(limits.MaxChartFiles-len(hello())+1)...)),
			control: tgz(plus(hello(), emptyFiles(limits.MaxChartFiles-len(hello()))...)),
			want:    chart.ErrLimitExceeded,
		},
		{
			name:    "archive larger than a chart layer",
			attack:  then(good, bytesOf(make([]byte, limits.MaxChartLayerBytes))),
			control: good,
			want:    chart.ErrLimitExceeded,
		},

		// The gzip stream.
		{
			name:    "trailing garbage after the gzip stream",
			attack:  then(good, bytesOf([]byte("garbage"))),
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "second gzip member",
			attack:  then(good, good),
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name: "second gzip member of zero padding",
			attack: then(good, func(t *testing.T) []byte {
				zeros, err := testchart.Gzip(make([]byte, 1024))
				must(t, err)
				return zeros
			}),
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "truncated gzip stream",
			attack:  func(t *testing.T) []byte { a := good(t); return a[:len(a)-10] },
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "bad gzip checksum",
			attack:  func(t *testing.T) []byte { a := bytes.Clone(good(t)); a[len(a)-8] ^= 0xff; return a },
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name: "not gzip",
			attack: func(t *testing.T) []byte {
				tarball, err := testchart.Tar(hello())
				must(t, err)
				return tarball
			},
			control: good,
			want:    chart.ErrInvalidChart,
		},

		// The chart.
		{
			name:    "chart name outside Helm's naming rule",
			attack:  tgz(chartIn("Hello_World", "Hello_World", nil)),
			control: tgz(chartIn("hello-world.v2", "hello-world.v2", nil)),
			want:    chart.ErrInvalidChart, at: "Hello_World",
		},
		{
			name:    "chart name too long",
			attack:  tgz(chartIn(strings.Repeat("a", 251), strings.Repeat("a", 251), nil)),
			control: tgz(chartIn(strings.Repeat("a", 250), strings.Repeat("a", 250), nil)),
			want:    chart.ErrInvalidChart,
		},
		{
			name:    "chart name differs from its directory",
			attack:  tgz(chartIn("other", "hello", nil)),
			control: tgz(chartIn("hello", "hello", nil)),
			want:    chart.ErrInvalidChart, at: "other",
		},
		{
			name:    "invalid metadata",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": "apiVersion: v2\nname: hello\nversion: not-semver\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n"})),
			want:    chart.ErrInvalidChart, at: "hello",
		},
		{
			name:    "missing Chart.yaml",
			attack:  tgz(withoutEntry(hello(), "hello/Chart.yaml")),
			control: good,
			want:    chart.ErrInvalidChart,
		},
		{
			name:   "declared dependency not vendored",
			attack: tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()})),
			control: func(t *testing.T) []byte {
				return tgz(plus(chartIn("hello", "hello", map[string]string{"Chart.yaml": dependsOnSub()}), file("hello/charts/sub-0.1.0.tgz", subArchive(t))))(t)
			},
			want: chart.ErrInvalidChart, at: "hello",
		},
		{
			name: "two subcharts of one name",
			attack: func(t *testing.T) []byte {
				v2, err := testchart.Archive("sub", "0.2.0")
				must(t, err)
				return tgz(plus(hello(), file("hello/charts/sub-0.1.0.tgz", subArchive(t)), file("hello/charts/sub-0.2.0.tgz", string(v2))))(t)
			},
			control: func(t *testing.T) []byte {
				other, err := testchart.Archive("other", "0.2.0")
				must(t, err)
				return tgz(plus(hello(), file("hello/charts/sub-0.1.0.tgz", subArchive(t)), file("hello/charts/other-0.2.0.tgz", string(other))))(t)
			},
			want: chart.ErrInvalidChart, at: "hello",
		},
		{
			name:    "stray file in charts/",
			attack:  tgz(plus(hello(), file("hello/charts/README.md", "x"))),
			control: tgz(plus(hello(), file("hello/charts/.README.md", "x"))),
			want:    chart.ErrInvalidChart, at: "hello/charts/README.md",
		},
		{
			name:    "subchart directory named differently from its chart",
			attack:  tgz(slices.Concat(hello(), chartIn("hello/charts/other", "sub", nil))),
			control: tgz(slices.Concat(hello(), chartIn("hello/charts/sub", "sub", nil))),
			want:    chart.ErrInvalidChart, at: "hello/charts/other",
		},
		{
			name:    "subchart directory named like an archive",
			attack:  tgz(slices.Concat(hello(), chartIn("hello/charts/sub.tgz", "sub.tgz", nil))),
			control: tgz(slices.Concat(hello(), chartIn("hello/charts/sub", "sub", nil))),
			want:    chart.ErrInvalidChart, at: "hello/charts/sub.tgz/Chart.yaml",
		},

		// Vendored subchart archives are checked like the top-level one.
		{
			name: "symbolic link in a vendored subchart archive",
			attack: func(t *testing.T) []byte {
				sub := tgz(plus(chartIn("sub", "sub", nil), testchart.Entry{Name: "sub/files/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}))(t)
				return tgz(plus(hello(), file("hello/charts/sub-0.1.0.tgz", string(sub))))(t)
			},
			control: func(t *testing.T) []byte {
				sub := tgz(plus(chartIn("sub", "sub", nil), file("sub/files/x", "x")))(t)
				return tgz(plus(hello(), file("hello/charts/sub-0.1.0.tgz", string(sub))))(t)
			},
			want: chart.ErrInvalidChart, at: "hello/charts/sub-0.1.0.tgz/sub/files/x",
		},
		{
			name: "decompression bomb in a vendored subchart archive",
			attack: func(t *testing.T) []byte {
				sub := streamed(chartIn("hello", "hello", nil), 1, limits.MaxChartFileBytes+1, 0, "")(t)
				return tgz(plus(chartIn("outer", "outer", nil), file("outer/charts/hello-0.1.0.tgz", string(sub))))(t)
			},
			control: func(t *testing.T) []byte {
				sub := streamed(chartIn("hello", "hello", nil), 1, limits.MaxChartFileBytes, 0, "")(t)
				return tgz(plus(chartIn("outer", "outer", nil), file("outer/charts/hello-0.1.0.tgz", string(sub))))(t)
			},
			want: chart.ErrLimitExceeded, at: "outer/charts/hello-0.1.0.tgz/hello/files/zeros-00",
		},
		{
			name:    "subcharts nested too deep",
			attack:  func(t *testing.T) []byte { return nested(t, limits.MaxChartDepth+2, nil) },
			control: func(t *testing.T) []byte { return nested(t, limits.MaxChartDepth+1, nil) },
			want:    chart.ErrLimitExceeded,
		},
		{
			name: "alias bomb deep in nested subcharts",
			attack: func(t *testing.T) []byte {
				return nested(t, 3, map[string]string{"values.yaml": laughs(9, 9)})
			},
			control: func(t *testing.T) []byte {
				return nested(t, 3, map[string]string{"values.yaml": laughs(2, 3)})
			},
			want: chart.ErrLimitExceeded, at: "c0/charts/c1-0.1.0.tgz/c1/charts/c2-0.1.0.tgz/c2/values.yaml",
		},

		// YAML alias bombs.
		// Duplicate keys (ARC-11): refused, stricter than Helm.
		{
			name:    "duplicate key in Chart.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\nversion: 6.6.6\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\n"})),
			want:    chart.ErrInvalidChart, at: "hello/Chart.yaml",
		},
		{
			name:    "duplicate key in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nimage: registry.example/app\nimage: evil.example/app\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nimage: registry.example/app\n"})),
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		{
			name:    "duplicate nested key in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nsecurity:\n  privileged: false\n  privileged: true\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nsecurity:\n  privileged: false\nother:\n  privileged: true\n"})),
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		{
			name:    "duplicate key differing only in quoting",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nports:\n  80: web\n  \"80\": admin\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\nports:\n  80: web\n  \"81\": admin\n"})),
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		// Deep nesting (ARC-09): the parsers' own depth limits, kept by a test.
		{
			name:    "values.yaml nested deeper than the YAML parser allows",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\ndeep: " + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\ndeep: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"})),
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
		{
			name:    "values.schema.json nested deeper than the JSON parser allows",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.schema.json": strings.Repeat("[", 100001) + strings.Repeat("]", 100001)})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.schema.json": nestedSchema(10)})),
			want:    chart.ErrInvalidChart, at: "hello/values.schema.json",
		},
		{
			name:    "values.schema.json nested more than 64 levels",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.schema.json": nestedSchema(40)})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.schema.json": nestedSchema(30)})),
			want:    chart.ErrInvalidChart, at: "hello/values.schema.json",
		},
		{
			name:    "alias bomb in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\n" + laughs(9, 9)})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\n" + laughs(2, 3)})),
			want:    chart.ErrLimitExceeded, at: "hello/values.yaml",
		},
		{
			name:    "too many aliases in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\n" + aliases(limits.MaxYAMLAliases+1)})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "message: hi\n" + aliases(limits.MaxYAMLAliases)})),
			want:    chart.ErrLimitExceeded, at: "hello/values.yaml",
		},
		{
			name:    "alias to its own anchor in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "a: &a [x, *a]\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "a: &a [x]\nb: *a\n"})),
			want:    chart.ErrLimitExceeded, at: "hello/values.yaml",
		},
		{
			name:    "alias bomb in Chart.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": testchart.Files("hello", "0.1.0")["Chart.yaml"] + laughs(9, 9)})),
			control: tgz(chartIn("hello", "hello", map[string]string{"Chart.yaml": testchart.Files("hello", "0.1.0")["Chart.yaml"] + laughs(2, 3)})),
			want:    chart.ErrLimitExceeded, at: "hello/Chart.yaml",
		},
		{
			name:    "alias bomb in a CRD",
			attack:  tgz(plus(hello(), file("hello/crds/crd.yaml", "kind: CustomResourceDefinition\n"+laughs(9, 9)))),
			control: tgz(plus(hello(), file("hello/crds/crd.yaml", "kind: CustomResourceDefinition\n"+laughs(2, 3)))),
			want:    chart.ErrLimitExceeded, at: "hello/crds/crd.yaml",
		},
		{
			name:    "invalid YAML in values.yaml",
			attack:  tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "a: [unclosed\n"})),
			control: tgz(chartIn("hello", "hello", map[string]string{"values.yaml": "a: [closed]\n"})),
			want:    chart.ErrInvalidChart, at: "hello/values.yaml",
		},
	}
}

// emptyFiles returns count empty files under hello/files/.
func emptyFiles(count int) []testchart.Entry {
	entries := make([]testchart.Entry, count)
	for i := range entries {
		entries[i] = file(fmt.Sprintf("hello/files/f%05d", i), "")
	}
	return entries
}

// withoutEntry returns entries without the one named name.
func withoutEntry(entries []testchart.Entry, name string) []testchart.Entry {
	return slices.DeleteFunc(entries, func(e testchart.Entry) bool { return e.Name == name })
}

// longName returns a name of n bytes: prefix, then segments of at most 200
// bytes.
func longName(prefix string, n int) string {
	name := prefix
	for len(name) < n {
		seg := min(200, n-len(name))
		if len(name) > len(prefix) {
			name += "/"
			seg = min(200, n-len(name))
		}
		name += strings.Repeat("a", seg)
	}
	return name
}

// nestedSchema is a valid JSON schema of an object whose property "x" is an
// object whose property "x" is ..., levels deep: two JSON levels each.
func nestedSchema(levels int) string {
	return strings.Repeat(`{"type":"object","properties":{"x":`, levels) + `{"type":"string"}` + strings.Repeat("}}", levels)
}
