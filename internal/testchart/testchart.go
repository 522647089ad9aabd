// Package testchart builds Helm chart archives for tests: a small, well-formed
// chart, and archives of arbitrary, possibly hostile, tar entries.
//
// The chart, "hello", has a ServiceAccount, a ConfigMap (data.message from
// .Values.message, "hello" by default), a Service, a Deployment, a test hook
// Pod and a NOTES.txt. Its canonical copy is embedded from ./hello; the copy
// under config/samples/chart/hello, which the demo packages with helm, must
// stay identical (a test checks).
//
// Output is deterministic: the same input gives the same bytes (fixed
// modification times, fixed entry order), so digests are stable.
//
// Only tests import this package.
package testchart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed all:hello
var hello embed.FS

// modTime is the modification time of every entry, 2026-01-01T00:00:00Z.
const modTime = 1767225600

// Files returns the hello chart named name at version, as paths relative to
// the chart directory mapped to contents; Chart.yaml carries name and
// version. Tests change the map to build malformed charts.
func Files(name, version string) map[string]string {
	files := make(map[string]string)
	err := fs.WalkDir(hello, "hello", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := hello.ReadFile(p)
		files[strings.TrimPrefix(p, "hello/")] = string(data)
		return err
	})
	if err != nil {
		panic(fmt.Sprintf("testchart: reading the embedded chart: %v", err)) // cannot happen: the files are compiled in
	}
	files["Chart.yaml"] = setNameVersion(files["Chart.yaml"], name, version)
	return files
}

// setNameVersion rewrites the name and version lines of a Chart.yaml.
func setNameVersion(chartYAML, name, version string) string {
	lines := strings.Split(chartYAML, "\n")
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "name:"):
			lines[i] = "name: " + strconv.Quote(name)
		case strings.HasPrefix(line, "version:"):
			lines[i] = "version: " + strconv.Quote(version)
		}
	}
	return strings.Join(lines, "\n")
}

// Archive returns the hello chart named name at version as a chart archive:
// a gzipped tar of regular files under the top-level directory name, sorted
// by path, with no directory entries (as helm package writes none).
func Archive(name, version string) ([]byte, error) {
	return Build(Entries(name, Files(name, version)))
}

// Entries turns files (paths relative to the chart directory) into sorted
// regular-file entries under the top-level directory dir.
func Entries(dir string, files map[string]string) []Entry {
	entries := make([]Entry, 0, len(files))
	for _, p := range slices.Sorted(maps.Keys(files)) {
		entries = append(entries, Entry{Name: dir + "/" + p, Body: files[p]})
	}
	return entries
}

// Entry is one tar entry. The zero Typeflag is a regular file and the zero
// Mode is 0644 (0755 for a directory); Format and PAXRecords are passed to
// archive/tar as they are (the zero Format lets it choose).
type Entry struct {
	Name       string
	Body       string
	Typeflag   byte
	Linkname   string
	Mode       int64
	Format     tar.Format
	PAXRecords map[string]string
}

// header returns the tar header of e.
func (e Entry) header() *tar.Header {
	if e.Typeflag == tar.TypeXGlobalHeader {
		return &tar.Header{Typeflag: e.Typeflag, Name: e.Name, PAXRecords: e.PAXRecords, Format: e.Format}
	}
	h := &tar.Header{
		Typeflag:   e.Typeflag,
		Name:       e.Name,
		Linkname:   e.Linkname,
		Mode:       e.Mode,
		Size:       int64(len(e.Body)),
		ModTime:    time.Unix(modTime, 0).UTC(),
		Format:     e.Format,
		PAXRecords: e.PAXRecords,
	}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Mode == 0 {
		h.Mode = 0o644
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
	}
	return h
}

// Build returns a gzipped tar of entries, in the order given.
func Build(entries []Entry) ([]byte, error) {
	t, err := Tar(entries)
	if err != nil {
		return nil, err
	}
	return Gzip(t)
}

// Tar returns an uncompressed tar of entries, in the order given, for tests
// that alter the tar stream itself before compressing it with Gzip.
func Tar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.header()); err != nil {
			return nil, fmt.Errorf("testchart: entry %q: %w", e.Name, err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			return nil, fmt.Errorf("testchart: entry %q: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("testchart: %w", err)
	}
	return buf.Bytes(), nil
}

// Gzip compresses data as one gzip member with an empty header.
func Gzip(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("testchart: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("testchart: %w", err)
	}
	return buf.Bytes(), nil
}
