package oci

import "errors"

// Sentinels a caller branches on with errors.Is. Every error returned by a
// Client method, ParseRepository or ParseChartManifest wraps exactly one of
// them.
var (
	// ErrInvalidReference: a repository, tag or digest that does not parse
	// strictly.
	ErrInvalidReference = errors.New("oci: invalid reference")
	// ErrNotFound: the registry answered 404, or no tag matches a range.
	ErrNotFound = errors.New("oci: not found")
	// ErrUnavailable: the answer is inconclusive: a network error, a timeout,
	// 429, 5xx or another unexpected status.
	ErrUnavailable = errors.New("oci: registry unavailable")
	// ErrDigestMismatch: a body whose sha256 or size differs from the one
	// that was asked for.
	ErrDigestMismatch = errors.New("oci: digest mismatch")
	// ErrLimitExceeded: a body, a listing or a page count over its cap.
	ErrLimitExceeded = errors.New("oci: limit exceeded")
	// ErrInvalidManifest: a manifest or index of the wrong shape or media
	// type.
	ErrInvalidManifest = errors.New("oci: invalid manifest")
	// ErrUnauthorized: the registry answered 401 or 403.
	ErrUnauthorized = errors.New("oci: unauthorized")
)
