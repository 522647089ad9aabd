#!/usr/bin/env bash
# Builds the pinned tool binaries chartproof's tests and code generation need, and caches them OUTSIDE the clone,
# keyed by version, so a fresh clone on the same machine (CI) reuses them.
#
#   hack/tools.sh path TOOL        print the absolute path of TOOL's binary (built first if not cached)
#   hack/tools.sh envtest-assets   print a directory holding kube-apiserver and etcd (for KUBEBUILDER_ASSETS)
#   hack/tools.sh all              build every tool, one after the other
#
# Progress and errors go to stderr; stdout carries only the answer.
# Cache root: ${CHARTPROOF_TOOLS_CACHE:-$HOME/.cache/chartproof-tools}; each tool lives in <root>/<dir>/<binary>.
# See hack/tools/README.md for how to bump a version.
set -euo pipefail

# ---- Pinned versions: the only place they are set. -------------------------------------------------------------
# kube-apiserver and etcd are built from the scratch modules hack/tools/kube and hack/tools/etcd; their go.mod must
# require the same version (checked below).
KUBE_VERSION=v1.37.2          # k8s.io/kubernetes (kube-apiserver)
ETCD_VERSION=v3.6.16          # go.etcd.io/etcd/server/v3
CONTROLLER_GEN_VERSION=v0.23.0 # sigs.k8s.io/controller-tools
REGISTRY_VERSION=v3.1.2       # github.com/distribution/distribution/v3
CRANE_VERSION=v0.22.1         # github.com/google/go-containerregistry
ORAS_VERSION=v1.3.6           # oras.land/oras
COSIGN_V3_VERSION=v3.1.3      # github.com/sigstore/cosign/v3
COSIGN_V2_VERSION=v2.6.5      # github.com/sigstore/cosign/v2
FULCIO_VERSION=v1.8.8         # github.com/sigstore/fulcio (local keyless Sigstore, e2e)
REKOR_TILES_VERSION=v2.3.0    # github.com/sigstore/rekor-tiles/v2 (Rekor v2, POSIX storage)
TSA_VERSION=v1.2.9            # github.com/sigstore/timestamp-authority
NOTATION_VERSION=v1.3.2       # github.com/notaryproject/notation (the CLI, for interop: `notation sign`)
HELM_VERSION=v3.22.0          # helm.sh/helm/v3 (the CLI, for interop: `helm package --sign`, `helm push`); go.mod pins the SDK
PROMTOOL_VERSION=v0.316.0     # github.com/prometheus/prometheus (promtool: `promtool test rules` on config/prometheus)
# -----------------------------------------------------------------------------------------------------------------

# Build order for `all` (cheap, often-needed tools first).
ALL_TOOLS=(kube-apiserver controller-gen etcd registry crane oras cosign-v3 cosign-v2 fulcio rekor-server timestamp-server helm notation promtool)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CHARTPROOF_TOOLS_CACHE:-$HOME/.cache/chartproof-tools}
LOCKED=0
TMP_DIR=""

log() { echo "tools.sh: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: hack/tools.sh path TOOL | envtest-assets | all
TOOL is one of: ${ALL_TOOLS[*]}
cache root: $CACHE
EOF
	exit 2
}

# tool_info TOOL sets the T_* variables that describe how TOOL is built and where it is cached:
#   T_VERSION  pinned version            T_DIR      cache folder name under $CACHE
#   T_BIN      binary name               T_PKG      Go package of the main program
#   T_EST      rough cold build time     T_SCRATCH  scratch module under hack/tools/ ("" = go install PKG@VERSION)
#   T_MODULE   module whose version the scratch module's go.mod must pin
#   T_LDFLAGS  extra -ldflags for the build ("" = none)
tool_info() {
	T_SCRATCH=""
	T_MODULE=""
	T_LDFLAGS=""
	case "$1" in
	kube-apiserver)
		T_VERSION=$KUBE_VERSION T_DIR=kube-$KUBE_VERSION T_BIN=kube-apiserver T_EST="~8 min"
		T_PKG=k8s.io/kubernetes/cmd/kube-apiserver
		T_SCRATCH=kube T_MODULE=k8s.io/kubernetes
		# Without these the server reports v0.0.0 and clients cannot parse its version.
		local major minor
		major=$(echo "${KUBE_VERSION#v}" | cut -d. -f1)
		minor=$(echo "${KUBE_VERSION#v}" | cut -d. -f2)
		T_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
		T_LDFLAGS+=" -X k8s.io/component-base/version.gitMajor=$major"
		T_LDFLAGS+=" -X k8s.io/component-base/version.gitMinor=$minor"
		;;
	etcd)
		T_VERSION=$ETCD_VERSION T_DIR=etcd-$ETCD_VERSION T_BIN=etcd T_EST="~1 min"
		T_PKG=go.etcd.io/etcd/server/v3
		T_SCRATCH=etcd T_MODULE=go.etcd.io/etcd/server/v3
		;;
	controller-gen)
		T_VERSION=$CONTROLLER_GEN_VERSION T_DIR=controller-gen-$CONTROLLER_GEN_VERSION T_BIN=controller-gen T_EST="~1.5 min"
		T_PKG=sigs.k8s.io/controller-tools/cmd/controller-gen
		;;
	registry)
		T_VERSION=$REGISTRY_VERSION T_DIR=registry-$REGISTRY_VERSION T_BIN=registry T_EST="~2.5 min"
		T_PKG=github.com/distribution/distribution/v3/cmd/registry
		# Otherwise `registry --version` reports a placeholder.
		T_LDFLAGS="-X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
		;;
	crane)
		T_VERSION=$CRANE_VERSION T_DIR=crane-$CRANE_VERSION T_BIN=crane T_EST="~15 s"
		T_PKG=github.com/google/go-containerregistry/cmd/crane
		;;
	oras)
		T_VERSION=$ORAS_VERSION T_DIR=oras-$ORAS_VERSION T_BIN=oras T_EST="~15 s"
		T_PKG=oras.land/oras/cmd/oras
		;;
	cosign-v3)
		T_VERSION=$COSIGN_V3_VERSION T_DIR=cosign-$COSIGN_V3_VERSION T_BIN=cosign T_EST="~5 min"
		T_PKG=github.com/sigstore/cosign/v3/cmd/cosign
		;;
	cosign-v2)
		T_VERSION=$COSIGN_V2_VERSION T_DIR=cosign-$COSIGN_V2_VERSION T_BIN=cosign T_EST="~4 min"
		T_PKG=github.com/sigstore/cosign/v2/cmd/cosign
		;;
	fulcio)
		T_VERSION=$FULCIO_VERSION T_DIR=fulcio-$FULCIO_VERSION T_BIN=fulcio T_EST="~1.5 min"
		T_PKG=github.com/sigstore/fulcio
		;;
	rekor-server)
		T_VERSION=$REKOR_TILES_VERSION T_DIR=rekor-tiles-$REKOR_TILES_VERSION T_BIN=posix T_EST="~1 min"
		T_PKG=github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix
		;;
	timestamp-server)
		T_VERSION=$TSA_VERSION T_DIR=timestamp-authority-$TSA_VERSION T_BIN=timestamp-server T_EST="~1.7 min"
		T_PKG=github.com/sigstore/timestamp-authority/cmd/timestamp-server
		;;
	notation)
		T_VERSION=$NOTATION_VERSION T_DIR=notation-$NOTATION_VERSION T_BIN=notation T_EST="~1 min"
		T_PKG=github.com/notaryproject/notation/cmd/notation
		T_SCRATCH=notation T_MODULE=github.com/notaryproject/notation
		;;
	helm)
		T_VERSION=$HELM_VERSION T_DIR=helm-$HELM_VERSION T_BIN=helm T_EST="~6.5 min"
		T_PKG=helm.sh/helm/v3/cmd/helm
		;;
	promtool)
		T_VERSION=$PROMTOOL_VERSION T_DIR=promtool-$PROMTOOL_VERSION T_BIN=promtool T_EST="~6 min"
		T_PKG=github.com/prometheus/prometheus/cmd/promtool
		;;
	*)
		log "unknown tool: $1"
		usage
		;;
	esac
}

# A scratch module's go.mod is what actually gets built; refuse to cache it under a version it does not pin.
check_scratch_pin() {
	[[ -n $T_SCRATCH ]] || return 0
	local dir=$REPO_ROOT/hack/tools/$T_SCRATCH have
	have=$(cd "$dir" && go list -m -f '{{.Version}}' "$T_MODULE") ||
		die "cannot read the $T_MODULE version from $dir/go.mod"
	[[ $have == "$T_VERSION" ]] ||
		die "$dir/go.mod requires $T_MODULE $have but hack/tools.sh pins $T_VERSION; bump both (see hack/tools/README.md)"
}

bin_path() { echo "$CACHE/$T_DIR/$T_BIN"; }

# Take the cache-wide build lock (once per process). Builds are serialised: this machine has 2 cores.
lock() {
	[[ $LOCKED == 1 ]] && return 0
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for another hack/tools.sh build to finish (lock: $CACHE/.lock)..."
		flock 9
	fi
	LOCKED=1
}

cleanup() {
	if [[ -n $TMP_DIR ]]; then
		rm -rf "$TMP_DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# build TOOL: build into a temp folder beside the final binary, then rename it into place, so an interrupted build
# never leaves a half-written binary at the cached path. The caller holds the lock and has called tool_info.
build() {
	local dir=$CACHE/$T_DIR start=$SECONDS
	mkdir -p "$dir"
	rm -rf "$dir"/.tmp-* # leftovers of a killed build; safe because we hold the lock
	TMP_DIR=$(mktemp -d "$dir/.tmp-XXXXXX")
	log "building $1 $T_VERSION (first time, $T_EST)..."
	if [[ -n $T_SCRATCH ]]; then
		(cd "$REPO_ROOT/hack/tools/$T_SCRATCH" &&
			go build -buildvcs=false -ldflags "$T_LDFLAGS" -o "$TMP_DIR/$T_BIN" "$T_PKG") >&2 ||
			die "building $1 $T_VERSION failed (from hack/tools/$T_SCRATCH; see the go output above)"
	else
		GOBIN=$TMP_DIR go install -ldflags "$T_LDFLAGS" "$T_PKG@$T_VERSION" >&2 ||
			die "building $1 $T_VERSION failed (go install $T_PKG@$T_VERSION; see the go output above)"
	fi
	[[ -x $TMP_DIR/$T_BIN ]] || die "building $1 $T_VERSION produced no $T_BIN binary"
	mv -f "$TMP_DIR/$T_BIN" "$dir/$T_BIN"
	rm -rf "$TMP_DIR"
	TMP_DIR=""
	log "built $1 $T_VERSION in $((SECONDS - start)) s: $dir/$T_BIN"
}

# ensure TOOL: make sure TOOL's binary is cached (building it if needed); leaves the T_* variables set.
ensure() {
	tool_info "$1"
	check_scratch_pin
	[[ -x $(bin_path) ]] && return 0
	lock
	[[ -x $(bin_path) ]] && return 0 # another caller built it while we waited for the lock
	build "$1"
}

# envtest-assets: a folder with kube-apiserver and etcd, as symlinks to their cached binaries.
envtest_assets() {
	local kube etcd dir=$CACHE/envtest-$KUBE_VERSION-$ETCD_VERSION
	ensure kube-apiserver
	kube=$(bin_path)
	ensure etcd
	etcd=$(bin_path)
	if [[ ! -x $dir/kube-apiserver || ! -x $dir/etcd ]]; then
		lock
		mkdir -p "$dir"
		ln -sfn "$kube" "$dir/kube-apiserver"
		ln -sfn "$etcd" "$dir/etcd"
	fi
	echo "$dir"
}

main() {
	[[ $# -ge 1 ]] || usage
	command -v go >/dev/null || die "go is not on PATH"
	command -v flock >/dev/null || die "flock is not on PATH (Debian package util-linux)"
	mkdir -p "$CACHE"
	CACHE=$(cd "$CACHE" && pwd) # absolute, even if CHARTPROOF_TOOLS_CACHE is relative

	case "$1" in
	path)
		[[ $# -eq 2 ]] || usage
		ensure "$2"
		bin_path
		;;
	envtest-assets)
		[[ $# -eq 1 ]] || usage
		envtest_assets
		;;
	all)
		[[ $# -eq 1 ]] || usage
		local tool
		for tool in "${ALL_TOOLS[@]}"; do
			ensure "$tool"
			log "ok $tool $T_VERSION: $(bin_path)"
		done
		envtest_assets >/dev/null
		;;
	*)
		usage
		;;
	esac
}

main "$@"
