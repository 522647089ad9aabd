package testsign

import (
	"bytes"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// staticLayer is a blob held in memory, uploaded as is.
type staticLayer struct {
	data []byte
	mt   types.MediaType
}

func (l staticLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.data))
	return h, err
}
func (l staticLayer) DiffID() (v1.Hash, error)            { return l.Digest() }
func (l staticLayer) Size() (int64, error)                { return int64(len(l.data)), nil }
func (l staticLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l staticLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l staticLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

// rawManifest uploads exact manifest bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
