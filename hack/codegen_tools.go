//go:build tools

// Package tools keeps k8s.io/code-generator, and through it the generators
// hack/update-codegen.sh builds, required in go.mod although no signet
// package imports it.
package tools

import _ "k8s.io/code-generator"
