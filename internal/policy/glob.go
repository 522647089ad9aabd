package policy

import (
	"fmt"
	"strings"
)

// checkGlob refuses patterns Match cannot give a clear meaning to.
func checkGlob(pattern string) error {
	if pattern == "" || strings.HasPrefix(pattern, "oci://") {
		return fmt.Errorf("repository glob %q: want host[:port]/path/name without oci://", pattern)
	}
	if strings.ContainsAny(pattern, "?[]\\@ ") {
		return fmt.Errorf("repository glob %q: only * and ** are wildcards; ?, [, ], \\, @ and spaces are not allowed", pattern)
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
func MatchRepository(pattern, repo string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(repo, "/"))
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// Try every split: ** takes 0..len(segs) segments.
			for i := 0; i <= len(segs); i++ {
				if matchSegments(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !matchSegment(pat[0], segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
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
