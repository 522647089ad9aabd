package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	helmregistry "helm.sh/helm/v3/pkg/registry"
)

// ShipOptions says what Ship builds and where it goes.
type ShipOptions struct {
	Image Options // Out, Platforms, Module, ...; Push and Version are Ship's
	// Registry is host[:port][/path]: the image goes to Registry/chartproof,
	// the chart to Registry/charts/chartproof. "" pushes nothing.
	Registry string
	Version  string // a SemVer; "" is 0.0.0-<the revision's first 12>
	// ChartOut receives the chart archive (chartproof-<version>.tgz).
	ChartOut string
	// Cosign signs the pushed chart; a zero Bin signs nothing.
	Cosign Cosign
}

// Shipped is what Ship built and where it put it.
type Shipped struct {
	Version      string
	ImageDigest  string
	ChartArchive string // the path of the chart archive
	// With a Registry: the image by digest, the chart (oci://...), the
	// chart manifest's digest, and the PEM of the key that signed it.
	Image, Chart, ChartDigest, PublicKey string
}

// Ship builds the image and chartproof's chart naming it by digest, and
// with a Registry pushes both and signs the chart: chartproof ships
// itself the way it asks charts to be shipped.
func Ship(ctx context.Context, o ShipOptions) (Shipped, error) {
	version := o.Version
	if version == "" {
		rev := gitRevision(o.Image.Module)
		version = "0.0.0-" + rev[:min(12, len(rev))]
	}
	s := Shipped{Version: version}
	repository := "chartproof"
	img := o.Image
	img.Version = version
	if o.Registry != "" {
		repository = o.Registry + "/chartproof"
		img.Push = repository + ":" + version
	}
	digest, err := Build(ctx, img)
	if err != nil {
		return s, err
	}
	s.ImageDigest = digest.String()
	created, err := createdTime(o.Image.Created)
	if err != nil {
		return s, err
	}
	archive, err := PackageChart(o.Image.Module, version, repository, s.ImageDigest, created)
	if err != nil {
		return s, err
	}
	if err := os.MkdirAll(o.ChartOut, 0o755); err != nil {
		return s, err
	}
	s.ChartArchive = filepath.Join(o.ChartOut, "chartproof-"+version+".tgz")
	if err := os.WriteFile(s.ChartArchive, archive, 0o644); err != nil {
		return s, err
	}
	if o.Registry == "" {
		return s, nil
	}
	s.Image = repository + "@" + s.ImageDigest
	opts := []helmregistry.ClientOption{helmregistry.ClientOptWriter(io.Discard)}
	if o.Image.Insecure {
		opts = append(opts, helmregistry.ClientOptPlainHTTP())
	}
	rc, err := helmregistry.NewClient(opts...)
	if err != nil {
		return s, err
	}
	chartRepo := o.Registry + "/charts/chartproof"
	res, err := rc.Push(archive, chartRepo+":"+version)
	if err != nil {
		return s, fmt.Errorf("pushing the chart: %w", err)
	}
	s.Chart, s.ChartDigest = "oci://"+chartRepo, res.Manifest.Digest
	if o.Cosign.Bin == "" {
		return s, nil
	}
	if s.PublicKey, err = o.Cosign.Sign(ctx, chartRepo+"@"+s.ChartDigest, o.Image.Insecure); err != nil {
		return s, err
	}
	return s, nil
}

// Cosign signs with the cosign CLI (v3: a Sigstore bundle attached as an
// OCI referrer) and a key pair in Home, made on first use without a
// password. Nothing leaves the machine but the pushes to the registry: no
// transparency log.
type Cosign struct {
	Bin  string // the cosign v3 binary
	Home string // its key pair (cosign.key, cosign.pub), signing config and HOME
}

// Sign signs ref (host/path@sha256:...) and returns the public key's PEM.
func (c Cosign) Sign(ctx context.Context, ref string, allowHTTP bool) (string, error) {
	key := filepath.Join(c.Home, "cosign.key")
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(c.Home, 0o700); err != nil {
			return "", err
		}
		if err := c.run(ctx, "generate-key-pair", "--output-key-prefix", filepath.Join(c.Home, "cosign")); err != nil {
			return "", err
		}
		// Without Rekor or a timestamp authority: a signing config that
		// names none.
		if err := c.run(ctx, "signing-config", "create", "--out", filepath.Join(c.Home, "signing-config.json")); err != nil {
			return "", err
		}
	}
	args := []string{"sign", "--key", key, "--signing-config", filepath.Join(c.Home, "signing-config.json"), "--yes"}
	if allowHTTP {
		args = append(args, "--allow-http-registry")
	}
	if err := c.run(ctx, append(args, ref)...); err != nil {
		return "", err
	}
	pub, err := os.ReadFile(filepath.Join(c.Home, "cosign.pub"))
	return string(pub), err
}

func (c Cosign) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.Home, "TUF_ROOT="+filepath.Join(c.Home, "tuf"), "COSIGN_PASSWORD=", "COSIGN_YES=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}
