package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartproof/chartproof/internal/limits"
)

// entry is one checked tar entry: its name (without a directory's trailing
// slash), whether it is a directory, and a file's bytes.
type entry struct {
	name string
	dir  bool
	data []byte
}

// budget is what is left of the caps that an archive shares with the
// subchart archives inside it.
type budget struct {
	entries int
	bytes   int64
}

// cappedReader reads the decompressed stream, charging every byte to the
// budget, and fails once the budget is spent: it counts what is actually
// decompressed, whatever the tar headers claim.
type cappedReader struct {
	r io.Reader
	b *budget
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.b.bytes < 0 {
		return 0, c.exceeded()
	}
	if int64(len(p)) > c.b.bytes+1 {
		p = p[:c.b.bytes+1]
	}
	n, err := c.r.Read(p)
	c.b.bytes -= int64(n)
	if c.b.bytes < 0 {
		return n, c.exceeded()
	}
	return n, err
}

func (c *cappedReader) exceeded() error {
	return limitf("", "decompressed chart is larger than %d bytes", limits.MaxChartBytes)
}

// readArchive decompresses and reads the archive at loc, checking each entry
// as it goes, and returns the entries in archive order.
func readArchive(loc string, archive []byte, b *budget) ([]entry, error) {
	src := bytes.NewReader(archive)
	zr, err := gzip.NewReader(src)
	if err != nil {
		return nil, invalidf(loc, "not a gzip stream: %w", err)
	}
	// Go reads concatenated gzip members as one stream; a second member is
	// data after the archive.
	zr.Multistream(false)
	stream := &cappedReader{r: zr, b: b}
	entries, err := readTar(loc, stream, b)
	if err != nil {
		return nil, err
	}
	if err := checkPadding(loc, stream); err != nil {
		return nil, err
	}
	if src.Len() != 0 {
		return nil, invalidf(loc, "%d bytes follow the gzip stream", src.Len())
	}
	return entries, nil
}

// readTar reads the entries of a tar stream, refusing any entry that is not
// a regular file or a directory with a safe name, within the budget.
func readTar(loc string, r io.Reader, b *budget) ([]entry, error) {
	tr := tar.NewReader(r)
	var entries []entry
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(loc, err)
		}
		at := join(loc, hd.Name)
		if b.entries == 0 {
			return nil, limitf(at, "chart has more than %d entries", limits.MaxChartFiles)
		}
		b.entries--
		if err := checkType(at, hd); err != nil {
			return nil, err
		}
		if err := checkPAX(at, hd); err != nil {
			return nil, err
		}
		e := entry{dir: hd.Typeflag == tar.TypeDir}
		if e.name, err = checkName(at, hd.Name, e.dir); err != nil {
			return nil, err
		}
		if !e.dir {
			if e.data, err = readFile(at, tr, hd.Size); err != nil {
				return nil, err
			}
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, invalidf(loc, "archive has no entries")
	}
	return entries, nil
}

// readError wraps an error met while reading the archive stream.
func readError(at string, err error) error {
	if errors.Is(err, ErrLimitExceeded) {
		return err
	}
	return invalidf(at, "reading archive: %w", err)
}

// readFile reads one file of at most limits.MaxChartFileBytes.
func readFile(at string, r io.Reader, size int64) ([]byte, error) {
	if size > limits.MaxChartFileBytes {
		return nil, limitf(at, "file is %d bytes, more than %d", size, limits.MaxChartFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, limits.MaxChartFileBytes+1))
	if err != nil {
		return nil, readError(at, err)
	}
	if len(data) > limits.MaxChartFileBytes {
		return nil, limitf(at, "file is larger than %d bytes", limits.MaxChartFileBytes)
	}
	return data, nil
}

// checkPadding reads what follows the end of the tar archive to the end of
// the gzip member, which also verifies its checksum. Tar writers pad an
// archive with zero blocks; anything else there is hidden data.
func checkPadding(loc string, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return invalidf(loc, "data follows the end of the tar archive")
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return readError(loc, err)
		}
	}
}

// checkType refuses every kind of entry but regular files and directories.
func checkType(at string, hd *tar.Header) error {
	switch hd.Typeflag {
	case tar.TypeReg, tar.TypeDir:
		return nil
	case tar.TypeSymlink:
		return invalidf(at, "symbolic link to %s: only regular files and directories are allowed", quote(hd.Linkname))
	case tar.TypeLink:
		return invalidf(at, "hard link to %s: only regular files and directories are allowed", quote(hd.Linkname))
	case tar.TypeXGlobalHeader:
		return invalidf(at, "PAX global header: some tar readers apply it to every later entry")
	default:
		return invalidf(at, "entry type %s: only regular files and directories are allowed", typeName(hd.Typeflag))
	}
}

// typeName names a tar entry type for a message.
func typeName(flag byte) string {
	switch flag {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "GNU sparse file"
	default:
		return quote(string(flag))
	}
}

// checkPAX refuses PAX records that make tar readers disagree about an entry:
// a sparse map (the entry's bytes are not its content), a size record
// (readers that skip PAX records see other entry boundaries), and a path
// record for a name the tar header itself can hold, which only a hostile
// writer emits. Tar writers use a path record for long or non-ASCII names.
func checkPAX(at string, hd *tar.Header) error {
	for k := range hd.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return invalidf(at, "sparse file (PAX record %s)", quote(k))
		}
	}
	if _, ok := hd.PAXRecords["size"]; ok {
		return invalidf(at, "PAX size record overrides the size in the tar header")
	}
	if name, ok := hd.PAXRecords["path"]; ok {
		if name != hd.Name {
			return invalidf(at, "PAX path record %s is overridden by a GNU long name", quote(name))
		}
		if fitsUSTAR(name) {
			return invalidf(at, "PAX path record overrides a name the tar header can hold")
		}
	}
	return nil
}

// fitsUSTAR reports whether a USTAR header can hold name: ASCII, and at most
// 100 bytes or split at a slash into a prefix of at most 155 bytes and a
// name of at most 100, as archive/tar's writer splits it.
func fitsUSTAR(name string) bool {
	const nameSize, prefixSize = 100, 155
	if strings.ContainsFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return false
	}
	if len(name) <= nameSize {
		return true
	}
	end := len(name)
	if end > prefixSize+1 {
		end = prefixSize + 1
	} else if name[end-1] == '/' {
		end--
	}
	i := strings.LastIndex(name[:end], "/")
	suffix := len(name) - i - 1
	return i > 0 && suffix > 0 && suffix <= nameSize
}

// maxSegmentBytes is the longest file name most file systems allow.
const maxSegmentBytes = 255

// checkName checks an entry name and returns it without a directory's
// trailing slash. A name is a relative, slash-separated path in valid UTF-8,
// without control characters or backslashes, whose segments are neither
// empty, ".", "..", a Windows drive ("C:") nor longer than a file system
// allows.
func checkName(at, name string, dir bool) (string, error) {
	if len(name) > limits.MaxChartPathBytes {
		return "", limitf(at, "name is %d bytes, more than %d", len(name), limits.MaxChartPathBytes)
	}
	if dir {
		name = strings.TrimSuffix(name, "/")
	}
	switch {
	case name == "":
		return "", invalidf(at, "empty name")
	case !utf8.ValidString(name):
		return "", invalidf(at, "name is not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", invalidf(at, "name contains a control character")
	case strings.Contains(name, `\`):
		return "", invalidf(at, "name contains a backslash")
	case strings.HasPrefix(name, "/"):
		return "", invalidf(at, "absolute path")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return "", invalidf(at, "empty path segment")
		case seg == "." || seg == "..":
			return "", invalidf(at, "%s path segment", quote(seg))
		case len(seg) == 2 && seg[1] == ':' && (seg[0]|0x20 >= 'a' && seg[0]|0x20 <= 'z'):
			return "", invalidf(at, "Windows drive %s in path", quote(seg))
		case len(seg) > maxSegmentBytes:
			return "", invalidf(at, "path segment of %d bytes, more than %d", len(seg), maxSegmentBytes)
		}
	}
	return name, nil
}

// checkUnique refuses two entries with the same name, names equal under
// Unicode case folding and NFC normalization, or a name that is both a file
// and a directory. Helm keeps the last of two equal names (and merges two
// Chart.yaml files field by field); extracted on macOS or Windows, names
// that fold together overwrite each other.
func checkUnique(loc string, entries []entry) error {
	type seen struct {
		name     string
		dir      bool
		explicit bool // a directory entry, not only a parent of one
	}
	names := make(map[string]seen)
	add := func(name string, dir, explicit bool) error {
		key := foldKey(name)
		prev, ok := names[key]
		switch {
		case !ok:
			names[key] = seen{name: name, dir: dir, explicit: explicit}
			return nil
		case prev.name != name:
			return invalidf(join(loc, name), "name collides with %s under case folding or Unicode normalization", quote(join(loc, prev.name)))
		case !dir || !prev.dir:
			return invalidf(join(loc, name), "name is both a file and a directory, or appears twice")
		case explicit && prev.explicit:
			return invalidf(join(loc, name), "directory appears twice")
		}
		prev.explicit = prev.explicit || explicit
		names[key] = prev
		return nil
	}
	for _, e := range entries {
		for i := range len(e.name) {
			if e.name[i] == '/' {
				if err := add(e.name[:i], true, false); err != nil {
					return err
				}
			}
		}
		if err := add(e.name, e.dir, true); err != nil {
			return err
		}
	}
	return nil
}

// foldKey maps name to a key that is equal for two names exactly when their
// NFC forms are equal under strings.EqualFold: each rune becomes the smallest
// rune of its case-folding orbit.
func foldKey(name string) string {
	return strings.Map(func(r rune) rune {
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			smallest = min(smallest, f)
		}
		return smallest
	}, norm.NFC.String(name))
}

// utf8BOM is the byte order mark Helm's archive loader strips from files.
var utf8BOM = []byte("\xef\xbb\xbf")

// splitTop returns the one top-level directory of the entries and the files
// under it, named relative to it, with a leading byte order mark removed as
// Helm's archive loader does.
func splitTop(loc string, entries []entry) (string, []*loader.BufferedFile, error) {
	top, _, _ := strings.Cut(entries[0].name, "/")
	var files []*loader.BufferedFile
	for _, e := range entries {
		first, rest, nested := strings.Cut(e.name, "/")
		switch {
		case first != top:
			return "", nil, invalidf(join(loc, e.name), "outside the top-level directory %s", quote(top))
		case !nested && !e.dir:
			return "", nil, invalidf(join(loc, e.name), "file outside the top-level directory")
		case e.dir:
			continue
		}
		files = append(files, &loader.BufferedFile{Name: rest, Data: bytes.TrimPrefix(e.data, utf8BOM)})
	}
	if len(files) == 0 {
		return "", nil, invalidf(loc, "archive has no files")
	}
	return top, files, nil
}
