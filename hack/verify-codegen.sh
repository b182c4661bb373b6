#!/usr/bin/env bash
# Fails when the generated code in the tree differs from what
# hack/update-codegen.sh generates from the current API types. It regenerates
# into a temporary copy of the module, so the working tree is never changed.
# Runs from any directory.
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/signet-verify-codegen.XXXXXX")"
trap 'rm -rf "${TMP}"' EXIT

# What the generators read: the module files, the codegen inputs and pkg/
# (the API types, and the generated code to compare against).
mkdir -p "${TMP}/hack"
cp -a "${ROOT}/go.mod" "${ROOT}/go.sum" "${TMP}/"
cp -a "${ROOT}/hack/update-codegen.sh" "${ROOT}/hack/boilerplate.go.txt" \
  "${ROOT}/hack/api-violations.list" "${TMP}/hack/"
cp -a "${ROOT}/pkg" "${TMP}/"

# Reuse (or build once) the generators of this checkout.
CODEGEN_BIN="${CODEGEN_BIN:-${ROOT}/_output/codegen-bin}" "${TMP}/hack/update-codegen.sh"

# Generated code is everything under pkg/generated and every zz_generated.*
# file; compare both ways, so that missing and leftover files count too.
ret=0
diff -ruN "${ROOT}/pkg/generated" "${TMP}/pkg/generated" || ret=1
while IFS= read -r file; do
  diff -uN "${ROOT}/${file}" "${TMP}/${file}" || ret=1
done < <(
  { (cd "${ROOT}" && find pkg -name 'zz_generated.*' -not -path 'pkg/generated/*')
    (cd "${TMP}" && find pkg -name 'zz_generated.*' -not -path 'pkg/generated/*'); } | LC_ALL=C sort -u
)

if [[ ${ret} -ne 0 ]]; then
  echo "Generated code is out of date: run hack/update-codegen.sh and commit the result." >&2
  exit 1
fi
echo "Generated code is up to date."
