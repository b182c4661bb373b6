#!/usr/bin/env bash
# Regenerates everything that is generated from pkg/apis: deepcopy,
# conversion and defaulting functions (zz_generated.*.go beside the types),
# OpenAPI definitions (pkg/generated/openapi), and the typed clientset,
# listers and informers (pkg/generated/{clientset,listers,informers}).
#
# The generators come from k8s.io/code-generator at the version in go.mod and
# are built into _output/codegen-bin (or $CODEGEN_BIN); nothing needs to be
# installed beforehand. Runs from any directory.
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
THIS_PKG=github.com/signet-dev/signet
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"

# kube_codegen.sh installs its generators into GOBIN; keep them out of the
# user's GOPATH/bin and pinned to this checkout.
GOBIN="${CODEGEN_BIN:-${ROOT}/_output/codegen-bin}"
mkdir -p "${GOBIN}"
export GOBIN

# kube_codegen.sh leaves temporary files behind; give it a directory to litter.
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/signet-update-codegen.XXXXXX")"
export TMPDIR
trap 'rm -rf "${TMPDIR}"' EXIT

CODEGEN_PKG="$(cd "${ROOT}" && go mod download k8s.io/code-generator && go list -m -f '{{.Dir}}' k8s.io/code-generator)"
if [[ -z "${CODEGEN_PKG}" || ! -f "${CODEGEN_PKG}/kube_codegen.sh" ]]; then
  echo "k8s.io/code-generator not found in the module cache (is it required in go.mod?)" >&2
  exit 1
fi
# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

# The generators resolve Go packages from the current module.
cd "${ROOT}"

kube::codegen::gen_helpers \
  --boilerplate "${BOILERPLATE}" \
  "${ROOT}/pkg/apis"

# hack/api-violations.list holds the API rule violations of the apimachinery
# types that are generated alongside ours and that we cannot change. A new
# violation fails the run: fix it in the types rather than listing it
# (UPDATE_API_KNOWN_VIOLATIONS=true rewrites the list).
update_report=()
if [[ "${UPDATE_API_KNOWN_VIOLATIONS:-}" == "true" ]]; then
  update_report=(--update-report)
fi
kube::codegen::gen_openapi \
  --output-dir "${ROOT}/pkg/generated/openapi" \
  --output-pkg "${THIS_PKG}/pkg/generated/openapi" \
  --output-model-name-file zz_generated.model_name.go \
  --report-filename "${ROOT}/hack/api-violations.list" \
  ${update_report[@]+"${update_report[@]}"} \
  --boilerplate "${BOILERPLATE}" \
  "${ROOT}/pkg/apis"

kube::codegen::gen_client \
  --with-watch \
  --output-dir "${ROOT}/pkg/generated" \
  --output-pkg "${THIS_PKG}/pkg/generated" \
  --boilerplate "${BOILERPLATE}" \
  "${ROOT}/pkg/apis"
