package policy

import (
	"fmt"
	"strings"
)

// MaxGlobBytes caps one repository glob, as the CRD does.
const MaxGlobBytes = 512

// checkGlob refuses patterns Match cannot give a clear meaning to.
func checkGlob(pattern string) error {
	if pattern == "" || strings.HasPrefix(pattern, "oci://") {
		return fmt.Errorf("repository glob %q: want host[:port]/path/name without oci://", pattern)
	}
	if strings.ContainsAny(pattern, "?[]\\@ ") {
		return fmt.Errorf("repository glob %q: only * and ** are wildcards; ?, [, ], \\, @ and spaces are not allowed", pattern)
	}
	if len(pattern) > MaxGlobBytes {
		return fmt.Errorf("repository glob of %d bytes is longer than %d", len(pattern), MaxGlobBytes)
	}
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "" {
			return fmt.Errorf("repository glob %q: empty path segment", pattern)
		}
		if strings.Contains(seg, "**") && seg != "**" {
			return fmt.Errorf("repository glob %q: ** must be a whole path segment", pattern)
		}
	}
	return nil
}

// MatchRepository reports whether repo ("host[:port]/path/name") matches
// pattern. `*` matches any run of characters inside one path segment
// (including none); `**` as a whole segment matches zero or more segments.
// The host is the first segment, so "*.example.com/**" is a valid pattern.
// Matching takes time proportional to the product of the segment counts,
// whatever the pattern (no backtracking blow-up, DOS-05).
func MatchRepository(pattern, repo string) bool {
	pat, segs := strings.Split(pattern, "/"), strings.Split(repo, "/")
	// ok[j] says whether pat[i:] matches segs[j:], for the current i,
	// filled from the end of the pattern backwards.
	ok := make([]bool, len(segs)+1)
	ok[len(segs)] = true // an empty pattern matches only the empty rest
	for i := len(pat) - 1; i >= 0; i-- {
		next := make([]bool, len(segs)+1)
		if pat[i] == "**" {
			// ** takes zero segments (ok[j]) or one more (next[j+1]).
			next[len(segs)] = ok[len(segs)]
			for j := len(segs) - 1; j >= 0; j-- {
				next[j] = ok[j] || next[j+1]
			}
		} else {
			for j := len(segs) - 1; j >= 0; j-- {
				next[j] = ok[j+1] && matchSegment(pat[i], segs[j])
			}
		}
		ok = next
	}
	return ok[0]
}

// matchSegment matches one segment against a pattern whose only wildcard is *.
func matchSegment(pat, s string) bool {
	parts := strings.Split(pat, "*")
	if len(parts) == 1 {
		return pat == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
