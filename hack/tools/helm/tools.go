//go:build tools

// Package tools pins Helm, which lints and renders artifacts/charts/signet in
// signet's tests. It is a module of its own so that Helm's dependencies never
// move the Kubernetes versions pinned by hack/tools/go.mod.
// hack/build-tools.sh helm builds it into _output/bin.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
