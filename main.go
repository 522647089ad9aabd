// Command chartproof is the chartproof controller manager, and with the
// subcommands `verify` and `verify-blob`, the same verification from the
// command line; `selftest` measures a policy's false-allow rate in a
// registry.
//
// Built with `-tags cli` (`make build` writes it to bin/cli/chartproof) it
// is the command line alone: the same `verify` and `verify-blob`, without
// the manager and the Kubernetes, controller-runtime and Helm action code
// it links, whose package initialisation would otherwise run before every
// verification (docs/benchmarks.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chartproof/chartproof/internal/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "verify" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Verify(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[2:])
		stop()
		os.Exit(code)
	}
	if len(os.Args) > 1 && os.Args[1] == "selftest" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Selftest(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[2:])
		stop()
		os.Exit(code)
	}
	if len(os.Args) > 1 && os.Args[1] == "verify-blob" {
		os.Exit(cli.VerifyBlob(cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[2:]))
	}
	if err := runManager(); err != nil {
		fmt.Fprintf(os.Stderr, "chartproof: %v\n", err)
		os.Exit(1)
	}
}
