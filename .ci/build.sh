#!/bin/sh
# Release builds, and the packaging checks that need the built tree.
#
#   .ci/build.sh                      cross-compile linux/amd64, linux/arm64
#                                     (NAS boxes, Raspberry Pi) and
#                                     windows/amd64 into dist/GOOS-GOARCH/,
#                                     build dist/graphrelay-VERSION-x64.msi
#                                     (.ci/msi.sh), then verify packaging/
#                                     with systemd's own tools
#   .ci/build.sh GOOS GOARCH OUTDIR   one target into OUTDIR (the Dockerfile's use)
#
# The go build line in build() is the only one: CI, the Dockerfile and
# anyone reproducing a release run it. VERSION (the Dockerfile's build
# argument) names the version; else git describe; else "dev".
set -eu
cd "$(dirname "$0")/.."

if [ -z "${VERSION:-}" ]; then
	VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
fi

build() {
	exe=graphrelay
	[ "$1" = windows ] && exe=graphrelay.exe
	mkdir -p "$3"
	# Static (no cgo, so it runs on distroless and any libc), and
	# reproducible: -trimpath drops the checkout's path and -buildvcs=false
	# the git state, which the Docker build context does not have, so the
	# same source, version and Go release give the same bytes everywhere.
	CGO_ENABLED=0 GOOS="$1" GOARCH="$2" go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION" -o "$3/$exe" ./cmd/graphrelay
	printf '%-14s %10d bytes  %s\n' "$1/$2" "$(wc -c <"$3/$exe")" "$3/$exe"
}

case $# in
3)
	build "$1" "$2" "$3"
	exit 0
	;;
0) ;;
*)
	echo "usage: $0 [GOOS GOARCH OUTDIR]" >&2
	exit 2
	;;
esac

echo "graphrelay $VERSION"
for target in linux/amd64 linux/arm64 windows/amd64; do
	os=${target%/*} arch=${target#*/}
	build "$os" "$arch" "dist/$os-$arch"
done

# Every package, the Windows service code and every test file must also
# compile for Windows; go vet type-checks them without running anything.
# (.ci/windows.sh runs the Windows tests under Wine.) The benchmark
# harness reads getrusage(2) and is Linux-only.
GOOS=windows go vet $(go list ./... | grep -v '/bench')

# The MSI, from the windows/amd64 binary, and a check of its tables.
if command -v wixl >/dev/null 2>&1; then
	bash .ci/msi.sh dist/windows-amd64 "$VERSION" dist
elif [ -n "${GRAPHRELAY_REQUIRE_CLIENTS:-}" ]; then
	echo "wixl not found (.ci/windows.sh installs msitools and wixl): the MSI was not built"
	exit 1
else
	echo "wixl not found: the MSI was not built (apt install msitools wixl)"
fi

# The systemd unit and sysusers snippet, checked by systemd itself (see
# TestSystemdUnitVerifies). Where systemd-analyze is missing the test skips,
# unless GRAPHRELAY_REQUIRE_CLIENTS=1 (CI) makes that a failure.
if command -v systemd-analyze >/dev/null 2>&1; then
	log="$(mktemp)"
	trap 'rm -f "$log"' EXIT
	if ! go test -count=1 -v -run '^(TestSystemdUnitVerifies|TestSysusersSnippet)$' ./cmd/graphrelay/ >"$log" 2>&1; then
		cat "$log"
		exit 1
	fi
	grep -E '^(--- |    packaging_test\.go)' "$log"
else
	echo "systemd-analyze not found: packaging/graphrelay.service not verified"
fi
