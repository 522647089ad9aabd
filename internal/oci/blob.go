package oci

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Blob fetches the blob desc describes. It reads at most desc.Size+1 bytes,
// refuses a desc.Size over max before any request, and checks the size and
// the sha256 of the body before returning any byte of it.
func (c *Client) Blob(ctx context.Context, repo Repository, desc v1.Descriptor, max int64) ([]byte, error) {
	if err := checkHash(desc.Digest); err != nil {
		return nil, err
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("%w: blob %s: negative size %d", ErrInvalidManifest, desc.Digest, desc.Size)
	}
	if desc.Size > max {
		return nil, fmt.Errorf("%w: blob %s: size %d, cap %d", ErrLimitExceeded, desc.Digest, desc.Size, max)
	}
	s, err := c.session(ctx, repo)
	if err != nil {
		return nil, err
	}
	resp, err := s.get(ctx, s.url("blobs", desc.Digest.String()), "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		return nil, fmt.Errorf("%w: blob %s of %s: Content-Length %d, size %d expected", ErrDigestMismatch, desc.Digest, repo, resp.ContentLength, desc.Size)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%w: blob %s of %s: reading body: %w", ErrUnavailable, desc.Digest, repo, err)
	}
	if int64(len(body)) != desc.Size {
		return nil, fmt.Errorf("%w: blob %s of %s: %d bytes served, %d expected", ErrDigestMismatch, desc.Digest, repo, len(body), desc.Size)
	}
	if got := digestOf(body); got != desc.Digest.String() {
		return nil, fmt.Errorf("%w: blob %s of %s: body hashes to %s", ErrDigestMismatch, desc.Digest, repo, got)
	}
	return body, nil
}
