# chartproof's build. `make demo` and `make test` work on a fresh machine: every
# tool they need is built from the Go module proxy by hack/tools.sh and cached
# outside the clone, keyed by version (the first run takes a while).

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
TOOLS := hack/tools.sh
BIN := bin/chartproof
CLI_BIN := bin/cli/chartproof
GO_TEST_FLAGS ?=

.PHONY: all build generate check-generated vet test fuzz bench demo image tools clean

all: build

## build: the chartproof binary (manager and CLI) in bin/, and the command line alone (-tags cli: verify and
## verify-blob, without the manager's dependencies, so it starts faster) in bin/cli/.
build:
	@echo "==> building $(BIN) and $(CLI_BIN)"
	go build -o $(BIN) .
	go build -tags cli -o $(CLI_BIN) .

## generate: deepcopy, CRDs and RBAC from the API types and markers (controller-gen).
generate:
	@echo "==> generating deepcopy, CRDs and RBAC"
	$$($(TOOLS) path controller-gen) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$$($(TOOLS) path controller-gen) crd rbac:roleName=chartproof-manager paths=./... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	go run ./hack/gendocs
	go run ./hack/genchart

## check-generated: fail when generated files are not what the sources say.
check-generated:
	@snap=$$(mktemp -d); cp -r api config docs charts $$snap/; \
	$(MAKE) --no-print-directory generate >/dev/null; \
	for d in api config docs charts; do diff -r $$snap/$$d $$d || { echo "generated files in $$d were stale: 'make generate' updated them; commit them"; rm -rf $$snap; exit 1; }; done; \
	rm -rf $$snap

vet:
	@echo "==> gofmt and go vet"
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags cli .

## tools: build (once) every tool the tests use.
tools:
	@echo "==> building test tools (first time: kube-apiserver ~8 min, cosign ~5 min each; cached after)"
	$(TOOLS) all
	@command -v gpg >/dev/null 2>&1 || { echo "==> installing gpg (Debian package gnupg: helm package --sign in e2e)"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends gnupg; }

## test: every test: unit, the controller against a real API server, e2e with real processes.
test: tools check-generated vet
	@echo "==> go test (real kube-apiserver + etcd, registry, cosign v2 and v3, helm and gpg, notation, a local keyless Sigstore)"
	KUBEBUILDER_ASSETS=$$($(TOOLS) envtest-assets) \
	CHARTPROOF_REGISTRY=$$($(TOOLS) path registry) \
	CHARTPROOF_COSIGN_V2=$$($(TOOLS) path cosign-v2) \
	CHARTPROOF_COSIGN_V3=$$($(TOOLS) path cosign-v3) \
	CHARTPROOF_FULCIO=$$($(TOOLS) path fulcio) \
	CHARTPROOF_REKOR=$$($(TOOLS) path rekor-server) \
	CHARTPROOF_TSA=$$($(TOOLS) path timestamp-server) \
	CHARTPROOF_ORAS=$$($(TOOLS) path oras) \
	CHARTPROOF_HELM=$$($(TOOLS) path helm) \
	CHARTPROOF_NOTATION=$$($(TOOLS) path notation) \
	CHARTPROOF_PROMTOOL=$$($(TOOLS) path promtool) \
	go test $(GO_TEST_FLAGS) -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

FUZZTIME ?= 2m
## fuzz: run every fuzz target for FUZZTIME each (make test runs them briefly). make test gives an iteration
## count (3000x), not a duration: a duration's deadline can end a slow input mid-run ("context deadline exceeded").
fuzz:
	@echo "==> fuzzing, $(FUZZTIME) per target"
	@for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "    $$pkg $$target"; \
			go test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) > /tmp/chartproof-fuzz.log 2>&1 || { cat /tmp/chartproof-fuzz.log; exit 1; }; \
		done; \
	done

## bench: every benchmark, and docs/benchmarks.md from the raw results (docs/bench/).
bench: build
	@echo "==> building what the benchmarks need (cached after the first time)"
	$(TOOLS) envtest-assets >/dev/null
	$(TOOLS) path registry >/dev/null
	$(TOOLS) path cosign-v2 >/dev/null
	$(TOOLS) path cosign-v3 >/dev/null
	KUBEBUILDER_ASSETS=$$($(TOOLS) envtest-assets) \
	CHARTPROOF_REGISTRY=$$($(TOOLS) path registry) \
	CHARTPROOF_COSIGN_V2=$$($(TOOLS) path cosign-v2) \
	CHARTPROOF_COSIGN_V3=$$($(TOOLS) path cosign-v3) \
	go run ./hack/bench --chartproof $(BIN) --cli $(CLI_BIN)

## demo: the main job on an embedded default: a local API server and registry, no cluster needed.
demo: build
	@echo "==> building what the demo needs (first time: several minutes, cached after)"
	$(TOOLS) envtest-assets >/dev/null
	$(TOOLS) path registry >/dev/null
	$(TOOLS) path cosign-v3 >/dev/null
	KUBEBUILDER_ASSETS=$$($(TOOLS) envtest-assets) \
	CHARTPROOF_REGISTRY=$$($(TOOLS) path registry) \
	CHARTPROOF_COSIGN_V3=$$($(TOOLS) path cosign-v3) \
	go run ./hack/demo --chartproof $(BIN)

## image: the manager's image for linux/amd64 and linux/arm64 without a Docker engine (hack/image: static binary, no
## base image, non-root, reproducible) as an OCI layout in bin/image, and charts/chartproof packaged with its digest in
## bin/. With IMAGE_REGISTRY=host[:port][/path] (INSECURE=1 for plain HTTP) both are pushed there and the chart is
## signed with cosign (the key pair in bin/cosign, made when absent). VERSION=x.y.z names them.
image:
	@echo "==> building the image and the chart (first time: a few minutes per platform)"
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) \
	CHARTPROOF_COSIGN_V3=$$($(if $(IMAGE_REGISTRY),$(TOOLS) path cosign-v3,true)) \
	go run ./hack/image $(if $(IMAGE_REGISTRY),--registry $(IMAGE_REGISTRY)) $(if $(INSECURE),--insecure) $(if $(VERSION),--version $(VERSION))

clean:
	rm -rf bin
