// Package chart loads a Helm chart from a chart archive (a gzipped tar) held
// in memory. The archive is never extracted to disk.
//
// Load checks the archive before Helm reads a byte of it, and the chart after
// Helm has loaded it:
//
//   - the archive is one gzip member with nothing after it, and nothing but
//     zero padding follows the end of the tar archive;
//   - entries are regular files and directories only: no links, devices,
//     FIFOs, sparse files or PAX global headers, and no PAX records that make
//     tar readers disagree about a name or a size;
//   - names are relative, slash-separated, valid UTF-8 without control
//     characters or backslashes, with no empty, "." or ".." segments and no
//     segment over 255 bytes, and all under one top-level directory;
//   - no two names are equal, equal under Unicode case folding and NFC
//     normalization, or both a file and a directory;
//   - entry count, file size, total decompressed size, path length and
//     subchart depth are capped (internal/limits), counting the bytes actually
//     decompressed rather than what headers claim;
//   - the YAML files Helm parses itself (Chart.yaml, Chart.lock, values.yaml,
//     requirements.yaml/.lock, crds/) have few aliases that expand to few
//     nodes, so a "billion laughs" document is refused, and no mapping with
//     a key twice (stricter than Helm, which keeps the last);
//   - every chart's name follows Helm's naming rule and is the name of its
//     directory, its metadata validates, no two of its subcharts share a
//     name, and every dependency it declares is vendored in its charts/
//     directory: nothing is fetched from elsewhere.
//
// Vendored subchart archives (charts/<name>.tgz) are checked the same way,
// within the same caps, instead of being handed to Helm's own archive loader.
//
// Every error wraps ErrInvalidChart or ErrLimitExceeded.
package chart
