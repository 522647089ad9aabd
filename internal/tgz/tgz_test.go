package tgz

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chartproof/chartproof/internal/limits"
)

// read returns the archive's files by name, with their times.
func read(t *testing.T, archive []byte) (map[string]string, map[string]time.Time) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	files, times := map[string]string{}, map[string]time.Time{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, times
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name], times[hdr.Name] = string(data), hdr.ModTime
	}
}

// TestWriteAndRewrite: Write is deterministic and stamps its time; Rewrite
// passes every entry through edit (a longer content included: sizes
// follow), appends extra files, and refuses a file over the cap.
func TestWriteAndRewrite(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	files := []File{{Name: "c/Chart.yaml", Data: []byte("name: c\n")}, {Name: "c/values.yaml", Data: []byte("a: 1\n")}}
	a, err := Write(files, at)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := Write(files, at); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("two writes differ (%v)", err)
	}
	got, times := read(t, a)
	if got["c/Chart.yaml"] != "name: c\n" || got["c/values.yaml"] != "a: 1\n" || !times["c/Chart.yaml"].Equal(at) {
		t.Fatalf("written %v at %v", got, times)
	}

	later := at.Add(time.Hour)
	b, err := Rewrite(a, func(hdr *tar.Header, data []byte) ([]byte, error) {
		hdr.ModTime = later
		if hdr.Name == "c/values.yaml" {
			return []byte("a: 1\nb: a longer value than before\n"), nil
		}
		return data, nil
	}, File{Name: "c/templates/x.yaml", Data: []byte("kind: ConfigMap\n")})
	if err != nil {
		t.Fatal(err)
	}
	got, times = read(t, b)
	if len(got) != 3 || got["c/values.yaml"] != "a: 1\nb: a longer value than before\n" || got["c/Chart.yaml"] != "name: c\n" ||
		got["c/templates/x.yaml"] != "kind: ConfigMap\n" || !times["c/Chart.yaml"].Equal(later) {
		t.Fatalf("rewritten %v at %v", got, times)
	}

	big, err := Write([]File{{Name: "c/big", Data: []byte(strings.Repeat("x", limits.MaxChartFileBytes+1))}}, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rewrite(big, nil); err == nil || !strings.Contains(err.Error(), "c/big: over") {
		t.Errorf("a file over the cap: %v, want refused", err)
	}
}
