// Command kubectl-signet is a kubectl plugin for signet: it turns a
// cert-manager Certificate manifest into a private key and a signed
// certificate, through a CertificateSigningRequest or the sign subresource,
// and shows which signers work and which requests wait on them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-dev/signet/cmd/kubectl-signet/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := app.NewCommand(app.StdStreams())
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}
