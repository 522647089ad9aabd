package chart

import (
	"testing"

	"github.com/chartproof/chartproof/internal/testchart"
)

// BenchmarkLoad is the safe in-memory load of the sample chart archive:
// every check, then Helm's loader.
func BenchmarkLoad(b *testing.B) {
	archive, err := testchart.Archive("hello", "1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(archive)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(archive); err != nil {
			b.Fatal(err)
		}
	}
}
