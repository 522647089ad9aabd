// Package tgz writes and rewrites gzipped tar archives, such as Helm chart
// archives, for the tools that make them: `make image`'s chart packaging
// and `chartproof selftest`'s chart variants. It never reads an archive
// for installing: internal/chart does, with its checks.
package tgz

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chartproof/chartproof/internal/limits"
)

// File is a regular file of an archive.
type File struct {
	Name string
	Data []byte
}

// Write returns an archive of files, in order, each mode 0644 with the
// time mtime, and a gzip header without a name or time.
func Write(files []File, mtime time.Time) ([]byte, error) {
	return write(func(tw *tar.Writer) error {
		for _, f := range files {
			if err := add(tw, f, mtime); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rewrite returns archive with every entry passed through edit, which may
// change the header (its Size is set afterwards) and returns the content,
// then extra appended (mode 0644, the Unix epoch as their time). A file
// over limits.MaxChartFileBytes is an error.
func Rewrite(archive []byte, edit func(hdr *tar.Header, data []byte) ([]byte, error), extra ...File) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	return write(func(tw *tar.Writer) error {
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			data, err := io.ReadAll(io.LimitReader(tr, limits.MaxChartFileBytes+1))
			if err != nil {
				return err
			}
			if len(data) > limits.MaxChartFileBytes {
				return fmt.Errorf("%s: over %d bytes", hdr.Name, limits.MaxChartFileBytes)
			}
			if edit != nil {
				if data, err = edit(hdr, data); err != nil {
					return err
				}
			}
			hdr.Size = int64(len(data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
		for _, f := range extra {
			if err := add(tw, f, time.Unix(0, 0)); err != nil {
				return err
			}
		}
		return nil
	})
}

// write runs fill on a tar writer and returns the gzipped archive.
func write(fill func(*tar.Writer) error) ([]byte, error) {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	if err := fill(tw); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func add(tw *tar.Writer, f File, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(f.Data)
	return err
}
