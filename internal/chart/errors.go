package chart

import (
	"fmt"
	"strconv"
)

// invalidf returns an error wrapping ErrInvalidChart that names at, the entry
// or chart concerned ("" for the whole top-level archive), and says why.
// format may use %w.
func invalidf(at, format string, args ...any) error {
	return wrapf(ErrInvalidChart, at, format, args...)
}

// limitf is invalidf for ErrLimitExceeded.
func limitf(at, format string, args ...any) error {
	return wrapf(ErrLimitExceeded, at, format, args...)
}

func wrapf(sentinel error, at, format string, args ...any) error {
	if at == "" {
		return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return fmt.Errorf("%w: %s: "+format, append([]any{sentinel, quote(at)}, args...)...)
}

// maxQuoted is how much of a name a message shows, so that a hostile name
// cannot flood a log line or a status condition.
const maxQuoted = 256

// quote returns s quoted for a message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// join names an entry of the archive at loc; loc is "" for the top-level
// archive and the path of a subchart archive inside it otherwise.
func join(loc, name string) string {
	if loc == "" {
		return name
	}
	return loc + "/" + name
}
