package chart

import (
	"bytes"
	"errors"
	"io"
	"path"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/chartproof/chartproof/internal/limits"
)

// parsedAsYAML reports whether Helm, or the API server it sends them to,
// parses a chart file as YAML when the chart is installed: the chart's
// metadata, lock and values files, and its CRDs. Other files reach templates
// as strings.
func parsedAsYAML(name string) bool {
	switch name {
	case "Chart.yaml", "Chart.lock", "values.yaml", "requirements.yaml", "requirements.lock":
		return true
	}
	if !strings.HasPrefix(name, "crds/") {
		return false
	}
	ext := path.Ext(name)
	return strings.EqualFold(ext, ".yaml") || strings.EqualFold(ext, ".yml") || strings.EqualFold(ext, ".json")
}

// checkYAML refuses a YAML file whose aliases would blow it up, or that has
// a duplicate key.
//
// A "billion laughs" document is a few hundred bytes that stand for billions
// of nodes once converted to JSON, as Helm converts it. checkYAML parses the
// file into nodes, which keeps aliases as references, and counts the aliases
// and the nodes they add when expanded.
//
// A mapping with a key twice means what the last one says to Helm's decoder,
// and what the first one says to others; refusing it is stricter than Helm,
// so that a reviewer reading the first value is not shown a different chart
// from the one installed. Keys are compared as the strings they become in
// JSON, so 1 and "1" are the same key.
func checkYAML(at string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	c := aliasCounter{anchors: make(map[*yaml.Node]int64)}
	var expanded int64
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return invalidf(at, "not valid YAML: %w", err)
		}
		expanded = min(expanded+c.expand(&doc), unbounded)
		if c.duplicate != nil {
			return invalidf(at, "line %d: duplicate key %s", c.duplicate.Line, quote(c.duplicate.Value))
		}
	}
	if c.aliases > limits.MaxYAMLAliases {
		return limitf(at, "YAML has %d aliases, more than %d", c.aliases, limits.MaxYAMLAliases)
	}
	if added := expanded - c.nodes; added > limits.MaxYAMLAliasNodes {
		return limitf(at, "YAML aliases expand to more than %d nodes", limits.MaxYAMLAliasNodes)
	}
	return nil
}

// unbounded stands for a node count too large to matter, and for an alias
// to a node that contains it.
const unbounded int64 = 1 << 40

// aliasCounter counts the nodes of a YAML document, the aliases among them,
// and the nodes the document stands for once its aliases are expanded.
type aliasCounter struct {
	nodes   int64
	aliases int
	// anchors holds the expanded size of each anchored node, the only nodes
	// an alias can refer to; unbounded while the node is being counted.
	anchors map[*yaml.Node]int64
	// duplicate is the first key found twice in one mapping.
	duplicate *yaml.Node
}

// expand counts n and returns the number of nodes it stands for once its
// aliases are expanded. Each node is counted once: an alias refers to an
// anchored node, whose size is kept.
func (c *aliasCounter) expand(n *yaml.Node) int64 {
	if size, ok := c.anchors[n]; ok {
		return size
	}
	if n.Anchor != "" {
		c.anchors[n] = unbounded
	}
	c.nodes++
	size := int64(1)
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c.aliases++
		size = c.expand(n.Alias)
	}
	if n.Kind == yaml.MappingNode && c.duplicate == nil {
		c.duplicate = duplicateKey(n)
	}
	for _, child := range n.Content {
		size = min(size+c.expand(child), unbounded)
	}
	if n.Anchor != "" {
		c.anchors[n] = size
	}
	return size
}

// duplicateKey returns the second occurrence of a scalar key that appears
// twice in the mapping n, or nil.
func duplicateKey(n *yaml.Node) *yaml.Node {
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if seen[k.Value] {
			return k
		}
		seen[k.Value] = true
	}
	return nil
}
