package chart_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chartproof/chartproof/internal/testchart"
)

// builder builds an archive for a test case when the case runs.
type builder func(t *testing.T) []byte

// hello returns the entries of the hello chart, as helm package lays them out.
func hello() []testchart.Entry {
	return testchart.Entries("hello", testchart.Files("hello", "0.1.0"))
}

// chartIn returns the entries of the hello chart named name, under dir, with
// the files in changes added or replaced.
func chartIn(dir, name string, changes map[string]string) []testchart.Entry {
	files := testchart.Files(name, "0.1.0")
	maps.Copy(files, changes)
	return testchart.Entries(dir, files)
}

// plus returns entries followed by extra.
func plus(entries []testchart.Entry, extra ...testchart.Entry) []testchart.Entry {
	return slices.Concat(entries, extra)
}

func file(name, body string) testchart.Entry {
	return testchart.Entry{Name: name, Body: body}
}

// tgz builds entries into a chart archive.
func tgz(entries []testchart.Entry) builder {
	return func(t *testing.T) []byte {
		t.Helper()
		archive, err := testchart.Build(entries)
		if err != nil {
			t.Fatal(err)
		}
		return archive
	}
}

// then appends tail to the archive b builds.
func then(b builder, tail func(t *testing.T) []byte) builder {
	return func(t *testing.T) []byte {
		t.Helper()
		return slices.Concat(b(t), tail(t))
	}
}

// bytesOf returns a builder of fixed bytes.
func bytesOf(data []byte) func(t *testing.T) []byte {
	return func(*testing.T) []byte { return data }
}

// streamed builds a chart archive without holding its tar in memory: the
// entries, then count files of size zero bytes, then, after the end of the
// tar archive, padding zero bytes and tail.
func streamed(entries []testchart.Entry, count, size, padding int, tail string) builder {
	return func(t *testing.T) []byte {
		t.Helper()
		var out bytes.Buffer
		zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
		must(t, err)
		tw := tar.NewWriter(zw)
		zeros := make([]byte, 1<<20)
		writeZeros := func(w interface{ Write([]byte) (int, error) }, n int) {
			for n > 0 {
				k := min(n, len(zeros))
				if _, err := w.Write(zeros[:k]); err != nil {
					t.Fatal(err)
				}
				n -= k
			}
		}
		for _, e := range entries {
			must(t, tw.WriteHeader(&tar.Header{Name: e.Name, Mode: 0o644, Size: int64(len(e.Body)), Typeflag: tar.TypeReg}))
			_, err := tw.Write([]byte(e.Body))
			must(t, err)
		}
		for i := range count {
			must(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("hello/files/zeros-%02d", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}))
			writeZeros(tw, size)
		}
		must(t, tw.Close())
		writeZeros(zw, padding)
		_, err = zw.Write([]byte(tail))
		must(t, err)
		must(t, zw.Close())
		return out.Bytes()
	}
}

// withPAX builds entries with the first ones turned into special headers:
// kinds[i] becomes the type flag of entries[i]. Written as regular files,
// the same entries are the control twin of the special headers.
func withPAX(entries []testchart.Entry, kinds ...byte) builder {
	return func(t *testing.T) []byte {
		t.Helper()
		tarball, err := testchart.Tar(entries)
		must(t, err)
		offset := 0
		for i, kind := range kinds {
			setTypeflag(t, tarball[offset:offset+512], kind)
			offset += 512 + (len(entries[i].Body)+511)/512*512
		}
		archive, err := testchart.Gzip(tarball)
		must(t, err)
		return archive
	}
}

// setTypeflag rewrites the type flag of a USTAR header block and its checksum.
func setTypeflag(t *testing.T, block []byte, flag byte) {
	t.Helper()
	if string(block[257:262]) != "ustar" {
		t.Fatalf("block is not a USTAR header: %q", block[257:265])
	}
	block[156] = flag
	copy(block[148:156], "        ")
	sum := 0
	for _, c := range block {
		sum += int(c)
	}
	copy(block[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// paxRecords formats PAX extended header records, sorted by key.
func paxRecords(records map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(records)) {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec) + 1
		for n != len(strconv.Itoa(n))+len(rec) {
			n = len(strconv.Itoa(n)) + len(rec)
		}
		b.WriteString(strconv.Itoa(n) + rec)
	}
	return b.String()
}

// laughs returns YAML "billion laughs" lines: levels anchored lists, each of
// width aliases to the one before.
func laughs(levels, width int) string {
	var b strings.Builder
	b.WriteString("\nl0: &l0 lol\n")
	for i := 1; i <= levels; i++ {
		aliases := slices.Repeat([]string{fmt.Sprintf("*l%d", i-1)}, width)
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.Join(aliases, ", "))
	}
	return b.String()
}

// aliases returns YAML with count aliases of one scalar.
func aliases(count int) string {
	return "\nscalar: &s x\nlist: [" + strings.Join(slices.Repeat([]string{"*s"}, count), ", ") + "]\n"
}

// nested returns a chain of count charts, c0 to c<count-1>, each vendoring
// the next as charts/<name>-0.1.0.tgz; the innermost has changes applied.
func nested(t *testing.T, count int, changes map[string]string) []byte {
	t.Helper()
	var inner []byte
	for i := count - 1; i >= 0; i-- {
		name := fmt.Sprintf("c%d", i)
		var entries []testchart.Entry
		if inner == nil {
			entries = chartIn(name, name, changes)
		} else {
			entries = plus(chartIn(name, name, nil), file(fmt.Sprintf("%s/charts/c%d-0.1.0.tgz", name, i+1), string(inner)))
		}
		archive, err := testchart.Build(entries)
		must(t, err)
		inner = archive
	}
	return inner
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
