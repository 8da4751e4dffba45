#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by tests/realkube from the Go module proxy:
# kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3) and kwok (sigs.k8s.io/kwok), at the versions pinned by go.mod
# and go.sum beside this script.
#
# The binaries go to a cache outside the checkout, keyed by a hash of go.mod, go.sum and
# this script:
#     ${ROTATOR_CONTROLPLANE_CACHE:-$HOME/.cache/rotator/controlplane}/<key>/bin/
# A run that finds every binary there does nothing but print "cached".
#
#     build.sh              build what is missing (one binary at a time, to bound memory)
#     build.sh --print-dir  print the bin directory and exit (builds nothing)
#     build.sh --check      exit 0 when every binary is present, 1 otherwise (builds nothing)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${ROTATOR_CONTROLPLANE_CACHE:-$HOME/.cache/rotator/controlplane}"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)"
bin_dir="$cache_root/$key/bin"

k8s_version="v1.36.3"
# name:main package
binaries=(
	"etcd:go.etcd.io/etcd/server/v3"
	"kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver"
	"kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager"
	"kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler"
	"kwok:sigs.k8s.io/kwok/cmd/kwok"
)

all_present() {
	local entry
	for entry in "${binaries[@]}"; do
		[[ -x "$bin_dir/${entry%%:*}" ]] || return 1
	done
}

case "${1:-}" in
--print-dir)
	echo "$bin_dir"
	exit 0
	;;
--check)
	all_present
	exit $?
	;;
"") ;;
*)
	echo "usage: $0 [--print-dir|--check]" >&2
	exit 2
	;;
esac

if all_present; then
	echo "cached: $bin_dir"
	exit 0
fi

if ! command -v go >/dev/null; then
	echo "build.sh: the go command is not installed; it is needed to build the control plane" >&2
	exit 1
fi

mkdir -p "$bin_dir"
# One build at a time per cache key, even across processes (a test session and a make target).
exec 9>"$cache_root/$key/.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if all_present; then
	echo "cached: $bin_dir"
	exit 0
fi

# The kubernetes version the components report (what hack/lib/version.sh stamps in a release).
version_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	version_ldflags+=" -X $pkg.gitVersion=$k8s_version"
	version_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
	version_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

export CGO_ENABLED=0 GOMAXPROCS="${GOMAXPROCS:-2}" GOFLAGS="${GOFLAGS:--mod=readonly}"
cd "$here"
echo "building the control plane into $bin_dir ($(go version | cut -d' ' -f3))"
total_start=$SECONDS
for entry in "${binaries[@]}"; do
	name="${entry%%:*}"
	pkg="${entry#*:}"
	if [[ -x "$bin_dir/$name" ]]; then
		echo "  $name: present"
		continue
	fi
	start=$SECONDS
	ldflags="-s -w"
	[[ "$pkg" == k8s.io/kubernetes/* ]] && ldflags+="$version_ldflags"
	go build -p 2 -trimpath -ldflags="$ldflags" -o "$bin_dir/.$name.tmp" "$pkg"
	mv -f "$bin_dir/.$name.tmp" "$bin_dir/$name"
	echo "  $name: built in $((SECONDS - start)) s ($(du -h "$bin_dir/$name" | cut -f1))"
done
echo "built in $((SECONDS - total_start)) s; binaries use $(du -sh "$bin_dir" | cut -f1)" \
	"(go build cache: $(du -sh "$(go env GOCACHE)" 2>/dev/null | cut -f1)," \
	"module cache: $(du -sh "$(go env GOMODCACHE)" 2>/dev/null | cut -f1))"
