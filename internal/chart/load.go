package chart

import (
	"errors"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartproof/chartproof/internal/limits"
)

var (
	// ErrInvalidChart means the archive or the chart in it is malformed or
	// unsafe: a link, a traversal, a duplicate, a bad name, a missing
	// dependency, or anything Helm cannot load.
	ErrInvalidChart = errors.New("chart: invalid chart")
	// ErrLimitExceeded means the archive exceeds one of the caps in
	// internal/limits.
	ErrLimitExceeded = errors.New("chart: limit exceeded")
)

// maxNameLength is the longest chart name Helm's naming rule allows.
const maxNameLength = 250

// chartName is Helm's naming rule for charts: lowercase letters, digits,
// dashes and dots, starting and ending with a letter or a digit.
var chartName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// Load parses a gzipped tar chart archive from memory and returns the Helm
// chart, or an error wrapping ErrInvalidChart or ErrLimitExceeded.
func Load(archive []byte) (*chart.Chart, error) {
	b := &budget{entries: limits.MaxChartFiles, bytes: limits.MaxChartBytes}
	return loadArchive("", archive, b, 0)
}

// loadArchive checks and loads one chart archive: the top-level one (loc is
// "") or a vendored subchart archive at loc, at the given subchart depth.
func loadArchive(loc string, archive []byte, b *budget, depth int) (*chart.Chart, error) {
	if len(archive) > limits.MaxChartLayerBytes {
		return nil, limitf(loc, "archive is %d bytes, more than %d", len(archive), limits.MaxChartLayerBytes)
	}
	entries, err := readArchive(loc, archive, b)
	if err != nil {
		return nil, err
	}
	if err := checkUnique(loc, entries); err != nil {
		return nil, err
	}
	top, files, err := splitTop(loc, entries)
	if err != nil {
		return nil, err
	}
	return assemble(join(loc, top), top, files, b, depth)
}

// assemble builds the chart whose files (paths relative to its directory) are
// given; at names the chart in messages and dir is the name of its directory.
// Helm loads the chart's own files; its subcharts are assembled or loaded here,
// so that Helm never reads a byte these checks have not seen.
func assemble(at, dir string, files []*loader.BufferedFile, b *budget, depth int) (*chart.Chart, error) {
	if depth > limits.MaxChartDepth {
		return nil, limitf(at, "subcharts nest more than %d deep", limits.MaxChartDepth)
	}
	own, subs, err := splitSubcharts(at, files)
	if err != nil {
		return nil, err
	}
	for _, f := range own {
		if parsedAsYAML(f.Name) {
			if err := checkYAML(join(at, f.Name), f.Data); err != nil {
				return nil, err
			}
		}
	}
	c, err := loader.LoadFiles(own)
	if err != nil {
		return nil, invalidf(at, "%w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(subs.dirs)) {
		sub, err := assemble(join(at, "charts/"+name), name, subs.dirs[name], b, depth+1)
		if err != nil {
			return nil, err
		}
		c.AddDependency(sub)
	}
	for _, a := range subs.archives {
		sub, err := loadArchive(join(at, a.Name), a.Data, b, depth+1)
		if err != nil {
			return nil, err
		}
		c.AddDependency(sub)
	}
	if err := checkMetadata(at, dir, c); err != nil {
		return nil, err
	}
	if err := checkSubchartNames(at, c); err != nil {
		return nil, err
	}
	if err := checkVendored(at, c); err != nil {
		return nil, err
	}
	if err := checkSchema(join(at, "values.schema.json"), c.Schema); err != nil {
		return nil, err
	}
	return c, nil
}

// subcharts are the vendored subcharts of a chart: directories by name, with
// paths relative to them, and archives with paths relative to the chart.
type subcharts struct {
	dirs     map[string][]*loader.BufferedFile
	archives []*loader.BufferedFile
}

// splitSubcharts sorts a chart's files the way Helm's loader does. A file
// under charts/<name>/ belongs to subchart <name>; charts/<name>.tgz is a
// subchart archive; names under charts/ that start with "_" or "." are
// ignored; provenance files (*.prov) stay with the chart. Helm refuses any
// other file directly in charts/, and so does this.
func splitSubcharts(at string, files []*loader.BufferedFile) ([]*loader.BufferedFile, subcharts, error) {
	var own []*loader.BufferedFile
	subs := subcharts{dirs: make(map[string][]*loader.BufferedFile)}
	for _, f := range files {
		rest, inCharts := strings.CutPrefix(f.Name, "charts/")
		if !inCharts || path.Ext(f.Name) == ".prov" {
			own = append(own, f)
			continue
		}
		name, inner, inDir := strings.Cut(rest, "/")
		switch {
		case strings.IndexAny(name, "_.") == 0:
			// Helm ignores these; so does the chart returned here.
		case path.Ext(name) == ".tgz" && !inDir:
			subs.archives = append(subs.archives, f)
		case path.Ext(name) == ".tgz" || !inDir:
			return nil, subcharts{}, invalidf(join(at, f.Name), "is neither a subchart archive charts/<name>.tgz nor in a subchart directory charts/<name>/")
		default:
			subs.dirs[name] = append(subs.dirs[name], &loader.BufferedFile{Name: inner, Data: f.Data})
		}
	}
	return own, subs, nil
}

// checkMetadata checks what Helm's loader leaves to its callers: the metadata
// validates, and the chart's name follows Helm's naming rule and is the name
// of the directory the chart came in.
func checkMetadata(at, dir string, c *chart.Chart) error {
	if err := c.Validate(); err != nil {
		return invalidf(at, "%w", err)
	}
	name := c.Name()
	if len(name) > maxNameLength || !chartName.MatchString(name) {
		return invalidf(at, "chart name %s does not follow Helm's naming rule (%s, at most %d characters)",
			quote(name), chartName, maxNameLength)
	}
	if name != dir {
		return invalidf(at, "chart name %s differs from its directory %s", quote(name), quote(dir))
	}
	return nil
}

// checkSubchartNames refuses two vendored subcharts of one name (say
// charts/sub-1.0.0.tgz and charts/sub-2.0.0.tgz): Helm would render both, and
// which one a dependency or a values key means is ambiguous.
func checkSubchartNames(at string, c *chart.Chart) error {
	seen := make(map[string]bool)
	for _, sub := range c.Dependencies() {
		if seen[sub.Name()] {
			return invalidf(at, "two vendored subcharts are named %s", quote(sub.Name()))
		}
		seen[sub.Name()] = true
	}
	return nil
}

// checkVendored refuses a chart that declares a dependency its charts/
// directory does not carry: Helm would fetch it from its repository, and no
// signature would cover it.
func checkVendored(at string, c *chart.Chart) error {
	vendored := make(map[string]bool)
	for _, sub := range c.Dependencies() {
		vendored[sub.Name()] = true
	}
	for _, dep := range c.Metadata.Dependencies {
		if !vendored[dep.Name] {
			return invalidf(at, "dependency %s (repository %s) is declared but not vendored in charts/",
				quote(dep.Name), quote(dep.Repository))
		}
	}
	return nil
}
