# signet — see README.md. The two commands that matter: `make run`, `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

BIN := $(CURDIR)/_output/bin
GO ?= go
# Integration tests start real etcd + kube-apiserver processes; give them room.
INTEGRATION_TIMEOUT ?= 30m

.PHONY: bench all build install-plugin tools chart-lint run test test-unit test-fuzz test-integration verify codegen verify-codegen fmt vet clean

all: build

## tools: build etcd, kube-apiserver and kubectl (v1.37.2) and helm into _output/bin from the Go module proxy
tools:
	hack/build-tools.sh etcd kube-apiserver kubectl helm

## chart-lint: helm lint the chart with its default and its best-practice values
CHART := artifacts/charts/signet
chart-lint:
	hack/build-tools.sh helm
	$(BIN)/helm lint --strict $(CHART)
	$(BIN)/helm lint --strict $(CHART) -f $(CHART)/values.best-practice.yaml

## build: build signet and the kubectl-signet plugin into _output/bin
build:
	$(GO) build -o $(BIN)/signet-apiserver ./cmd/signet-apiserver
	$(GO) build -o $(BIN)/kubectl-signet ./cmd/kubectl-signet

## install-plugin: install kubectl-signet into $GOBIN, else $(go env GOPATH)/bin; with that on PATH, `kubectl signet` works
install-plugin:
	gobin="$$($(GO) env GOBIN)"; gobin="$${gobin:-$$($(GO) env GOPATH)/bin}"; \
	  mkdir -p "$$gobin" && $(GO) build -o "$$gobin/kubectl-signet" ./cmd/kubectl-signet && \
	  echo "installed $$gobin/kubectl-signet; put $$gobin on PATH to run it as 'kubectl signet'"

## run: etcd + kube-apiserver + signet + demo issuers on loopback; Ctrl-C stops everything
run: tools build
	SIGNET_BIN_DIR=$(BIN) $(GO) run ./hack/local-up

## codegen: regenerate deepcopy, conversion, defaults, openapi, clientset, listers, informers
codegen:
	hack/update-codegen.sh

verify-codegen:
	hack/verify-codegen.sh

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

## verify: gofmt, go vet and generated code are current
verify: verify-codegen vet
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/tools/')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/)

## test-fuzz: run each fuzz target for FUZZTIME; corpora are under test/fuzz.
## Not part of `make test`: timed fuzzing depends on how busy the machine is
## (Go's fuzz coordinator gives up on slow workers); the seed corpora run as
## ordinary tests in test-unit.
FUZZTIME ?= 10s
FUZZ_TARGETS := pkg/issuers:FuzzParseSignerName pkg/signers:FuzzBuildTemplate pkg/signers:FuzzRequestedDuration
test-fuzz:
	for t in $(FUZZ_TARGETS); do \
	  $(GO) test ./$${t%%:*} -run='^$$' -fuzz="^$${t##*:}$$" -fuzztime=$(FUZZTIME) || exit 1; \
	done

test-integration: tools build
	SIGNET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) ./test/...

## test: codegen/format/vet verification, unit tests (with the fuzz seed corpora), integration and kubectl end-to-end tests
test: verify test-unit test-integration

## bench: signet side by side with its peers, ratios printed; report in _output/bench (BENCH_N CSRs per burst)
BENCH_N ?= 2000
bench: build
	hack/build-tools.sh etcd kube-apiserver kubectl kube-controller-manager
	SIGNET_BIN_DIR=$(BIN) $(GO) run ./test/bench -n $(BENCH_N) -out _output/bench

clean:
	rm -rf _output
