#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries that signet's tests, `make run` and
# `make bench` use, and Helm for the chart's tests, from the Go module proxy,
# into _output/bin. Everything is pinned by hack/tools/go.mod, and Helm by
# hack/tools/helm/go.mod; nothing is downloaded from anywhere else.
#
#   hack/build-tools.sh [kube-apiserver|etcd|kubectl|kube-controller-manager|helm ...]
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT=$(cd "$(dirname "${SELF}")/.." && pwd)
BIN="${ROOT}/_output/bin"
KUBE_VERSION=v1.37.2

declare -A PKG=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [etcd]=go.etcd.io/etcd/server/v3
  [helm]=helm.sh/helm/v4/cmd/helm
)
# Helm is a module of its own, so that its dependencies never move the
# Kubernetes versions of hack/tools/go.mod. Every other tool is built there.
declare -A MODULE=(
  [helm]=hack/tools/helm
)

tools=("$@")
if [[ ${#tools[@]} -eq 0 ]]; then
  tools=(etcd kube-apiserver kubectl)
fi

# Built from the module proxy, component-base reports v0.0.0-master unless told
# the release; kubectl and the aggregator compare versions, so set it.
major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minor}"
  ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "${BIN}"
for t in "${tools[@]}"; do
  pkg=${PKG[$t]:-}
  if [[ -z "${pkg}" ]]; then
    echo "unknown tool ${t}; known: ${!PKG[*]}" >&2
    exit 2
  fi
  cd "${ROOT}/${MODULE[$t]:-hack/tools}"
  # go build is incremental through the build cache; a stamp keyed on the
  # module's go.mod/go.sum skips even the link step when nothing changed.
  stamp="${BIN}/.${t}.stamp"
  want=$(cat go.mod go.sum "${SELF}" | sha256sum | cut -d' ' -f1)
  if [[ -x "${BIN}/${t}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    continue
  fi
  flags=${ldflags}
  if [[ "${t}" == helm ]]; then
    # Helm reports the version in its source ("v4.3") unless told the release.
    flags="-s -w -X helm.sh/helm/v4/internal/version.version=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)"
    flags+=" -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
  fi
  echo ">> building ${t} (${pkg})" >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "${flags}" -o "${BIN}/${t}" "${pkg}"
  echo "${want}" > "${stamp}"
done
