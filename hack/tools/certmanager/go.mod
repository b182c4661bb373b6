// cert-manager, pinned for its CRDs only: signet's tests apply the
// CertificateRequest, Issuer and ClusterIssuer CRDs from deploy/crds of this
// module as the Go module cache holds it (test/framework.CertManagerCRDDir
// runs `go mod download` here). No Go package of cert-manager is built or
// imported; this is a module of its own so that cert-manager's dependencies
// never move anything signet or the other tools build with.
module github.com/signet-dev/signet/hack/tools/certmanager

go 1.26.0

require github.com/cert-manager/cert-manager v1.21.2
