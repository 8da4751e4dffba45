#!/usr/bin/env bash
# Builds the helm binary that tests/unit/test_helm_chart.py renders and lints charts/rotator with,
# from its Go module (helm.sh/helm/v3 at the pinned version) through the Go module proxy, into a
# cache outside the checkout keyed by the version and this script:
#     ${ROTATOR_HELM_CACHE:-$HOME/.cache/rotator/helm}/<key>/bin/helm
# A run that finds it there does nothing but print "cached".
#
#     build.sh              build it when missing (about 12 minutes cold on 2 cores)
#     build.sh --print-dir  print the bin directory and exit (builds nothing)
#     build.sh --check      exit 0 when the binary is present, 1 otherwise (builds nothing)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
helm_version="v3.22.0"
cache_root="${ROTATOR_HELM_CACHE:-$HOME/.cache/rotator/helm}"
key="$( (echo "$helm_version"; cat "$here/build.sh") | sha256sum | cut -c1-16)"
bin_dir="$cache_root/$key/bin"

case "${1:-}" in
--print-dir)
	echo "$bin_dir"
	exit 0
	;;
--check)
	[[ -x "$bin_dir/helm" ]]
	exit $?
	;;
"") ;;
*)
	echo "usage: $0 [--print-dir|--check]" >&2
	exit 2
	;;
esac

if [[ -x "$bin_dir/helm" ]]; then
	echo "cached: $bin_dir/helm"
	exit 0
fi
if ! command -v go >/dev/null; then
	echo "build.sh: the go command is not installed; it is needed to build helm" >&2
	exit 1
fi

mkdir -p "$bin_dir"
exec 9>"$cache_root/$key/.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if [[ -x "$bin_dir/helm" ]]; then
	echo "cached: $bin_dir/helm"
	exit 0
fi

export CGO_ENABLED=0 GOMAXPROCS="${GOMAXPROCS:-2}" GOBIN="$bin_dir/.build"
echo "building helm $helm_version into $bin_dir ($(go version | cut -d' ' -f3))"
start=$SECONDS
# What helm's own Makefile stamps: its version (internal/version), and the Kubernetes version that
# `helm template` and `helm lint` assume (Capabilities.KubeVersion), that of the k8s.io modules it
# is built with (v0.37 -> 1.37); without it a chart's kubeVersion is checked against v1.20.
k8s_minor="37"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
	ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
go install -p 2 -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version"
mv -f "$GOBIN/helm" "$bin_dir/helm"
rmdir "$GOBIN" 2>/dev/null || true
echo "  helm: built in $((SECONDS - start)) s ($(du -h "$bin_dir/helm" | cut -f1))"
