// Command genchart writes charts/chartproof's templates and CRDs from
// config/default (make generate; hack/internal/image.ChartFiles).
package main

import (
	"fmt"
	"os"

	"github.com/chartproof/chartproof/hack/internal/image"
)

func main() {
	if err := image.WriteChart("."); err != nil {
		fmt.Fprintf(os.Stderr, "genchart: %v\n", err)
		os.Exit(1)
	}
}
