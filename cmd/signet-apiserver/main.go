// Command signet-apiserver serves signers and clustersigners as an aggregated
// Kubernetes API computed from cert-manager Issuers and ClusterIssuers.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/signet-dev/signet/cmd/signet-apiserver/app"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(app.NewCommand(ctx)))
}
