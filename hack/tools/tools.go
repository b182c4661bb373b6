//go:build tools

// Package tools pins the Kubernetes and etcd binaries that signet's tests, local
// environment and benchmarks run. hack/build-tools.sh builds them into _output/bin.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
