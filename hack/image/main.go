// Command image is `make image`: it builds chartproof's container image
// without a Docker engine and chartproof's chart naming it by digest
// (hack/internal/image), and with --registry pushes both and signs the
// chart with cosign.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/chartproof/chartproof/hack/internal/image"
)

func main() {
	var o image.ShipOptions
	var platforms string
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch to build")
	flag.StringVar(&o.Image.Out, "out", "bin/image", "directory of the OCI image layout to write")
	flag.StringVar(&o.Image.Binaries, "binaries", "bin", "also write each platform's binary to DIR/OS_ARCH/chartproof (what the Dockerfile copies)")
	flag.StringVar(&o.ChartOut, "chart-out", "bin", "directory of the chart archive")
	flag.StringVar(&o.Registry, "registry", "", "push the image to REGISTRY/chartproof and the chart to REGISTRY/charts/chartproof, and sign the chart")
	flag.BoolVar(&o.Image.Insecure, "insecure", false, "push over plain HTTP")
	flag.StringVar(&o.Version, "version", "", "the SemVer of the image and the chart (default: 0.0.0-REVISION)")
	flag.StringVar(&o.Cosign.Bin, "cosign", os.Getenv("CHARTPROOF_COSIGN_V3"), "the cosign v3 binary that signs the pushed chart")
	flag.StringVar(&o.Cosign.Home, "cosign-home", "bin/cosign", "the signing key pair (cosign.key, cosign.pub; made when absent)")
	flag.Parse()
	o.Image.Platforms = strings.Split(platforms, ",")
	if o.Registry != "" && o.Cosign.Bin == "" {
		fmt.Fprintln(os.Stderr, "image: --registry signs the chart: give --cosign or CHARTPROOF_COSIGN_V3 (make image does)")
		os.Exit(2)
	}
	s, err := image.Ship(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("image   %s (%s, OCI layout in %s)\n", s.ImageDigest, platforms, o.Image.Out)
	fmt.Printf("chart   %s\n", s.ChartArchive)
	if o.Registry != "" {
		fmt.Printf("pushed  %s\n", s.Image)
		fmt.Printf("pushed  %s:%s (%s), signed by %s/cosign.pub\n", s.Chart, s.Version, s.ChartDigest, o.Cosign.Home)
	}
}
