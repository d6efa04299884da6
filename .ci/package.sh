#!/usr/bin/env bash
# Builds the .deb, .rpm and OCI image tarball into dist/packages/ and
# checks each: the package contents and scripts, an install of the .deb on
# this machine (root only) with "graphrelay version" and "graphrelay check"
# from it, its removal keeping the configuration and a non-empty spool, and
# the image's configuration, binary digest and a run of its own binary
# under chroot. No container daemon is used.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
arch="$(go env GOARCH)"
out=dist/packages
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

root=""
[ "$(id -u)" = 0 ] && root=1

# Package version from git describe: v1.2.3 -> 1.2.3; an untagged commit
# -> 0.0.0~git.<hash>. rpm allows no hyphen in a version.
describe="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
if [[ $describe =~ ^v?([0-9]+\.[0-9]+.*)$ ]]; then
	pkgver="${BASH_REMATCH[1]}"
else
	pkgver="0.0.0~git.$describe"
fi
pkgver="${pkgver//-/.}"

# The stage packaging/linux/nfpm.yaml takes its built files from.
stage="$out/stage"
rm -rf "$stage"
VERSION="$describe" bash .ci/build.sh linux "$arch" "$stage" >/dev/null
binary="$PWD/$stage/graphrelay"
# The unit as installed by hand runs /usr/local/bin/graphrelay; the package
# puts the binary in /usr/bin.
sed 's#/usr/local/bin/graphrelay#/usr/bin/graphrelay#g' packaging/graphrelay.service >"$stage/graphrelay.service"
grep -q '^ExecStart=/usr/bin/graphrelay serve --config /etc/graphrelay/graphrelay.yaml$' "$stage/graphrelay.service"

rm -f "$out"/graphrelay*.deb "$out"/graphrelay*.rpm
for packager in deb rpm; do
	PKG_VERSION="$pkgver" PKG_ARCH="$arch" go run "$NFPM" package --config packaging/linux/nfpm.yaml --packager "$packager" --target "$out/"
done
deb="$(ls "$out"/graphrelay*.deb)"
rpmfile="$(ls "$out"/graphrelay*.rpm)"
ls -l "$deb" "$rpmfile"

fail() {
	echo "package check failed: $*" >&2
	exit 1
}
want_paths=(/usr/bin/graphrelay /usr/lib/systemd/system/graphrelay.service
	/usr/lib/sysusers.d/graphrelay.conf /etc/graphrelay/graphrelay.yaml /var/lib/graphrelay/spool)

# The .deb: files, the conffile, the scripts.
dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\.##; s#/$##' >"$work/deb.list"
for p in "${want_paths[@]}"; do grep -qx "$p" "$work/deb.list" || fail "$p missing from $deb"; done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -x /etc/graphrelay/graphrelay.yaml >/dev/null ||
	fail "/etc/graphrelay/graphrelay.yaml is not a conffile"
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep postinst >/dev/null || fail "no postinst in $deb"

# The .rpm, where rpm is available.
if command -v rpm >/dev/null 2>&1; then
	rpm -qpl "$rpmfile" >"$work/rpm.list" 2>/dev/null
	for p in "${want_paths[@]}"; do grep -qx "$p" "$work/rpm.list" || fail "$p missing from $rpmfile"; done
	rpm -qpc "$rpmfile" 2>/dev/null | grep -x /etc/graphrelay/graphrelay.yaml >/dev/null ||
		fail "/etc/graphrelay/graphrelay.yaml is not a %config file in $rpmfile"
	rpm -qp --scripts "$rpmfile" 2>/dev/null | grep 'systemd-sysusers' >/dev/null || fail "no postinstall in $rpmfile"
	echo "rpm: $(wc -l <"$work/rpm.list") paths, config and scripts present"
else
	echo "rpm not installed: $rpmfile built, contents not checked"
fi

# Install, use and remove the .deb on this machine.
if [ -n "$root" ]; then
	dpkg -s graphrelay >/dev/null 2>&1 && dpkg --purge graphrelay >/dev/null
	had_user=""
	getent passwd graphrelay >/dev/null && had_user=1
	# Leave the machine as it was, whether the checks pass or not.
	uninstall() {
		dpkg --purge graphrelay >/dev/null 2>&1 || true
		rm -rf /var/lib/graphrelay /etc/graphrelay
		[ -n "$had_user" ] || userdel graphrelay 2>/dev/null || true
	}
	trap 'uninstall; rm -rf "$work"' EXIT
	dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
	command -v graphrelay | grep -x /usr/bin/graphrelay >/dev/null || fail "graphrelay is not /usr/bin/graphrelay"
	graphrelay version | grep -F "$describe" >/dev/null || fail "graphrelay version does not say $describe"
	graphrelay version
	graphrelay check --config /etc/graphrelay/graphrelay.yaml || fail "graphrelay check on the packaged configuration"
	# As the unit runs it: the package's user, with CAP_NET_BIND_SERVICE
	# (AmbientCapabilities) for port 25, must own what it writes.
	setpriv --reuid graphrelay --regid graphrelay --init-groups \
		--inh-caps +net_bind_service --ambient-caps +net_bind_service -- graphrelay check --config /etc/graphrelay/graphrelay.yaml >"$work/check.log" ||
		{ cat "$work/check.log"; fail "graphrelay check as the graphrelay user"; }
	grep -q '^OK    spool .*(as user graphrelay)' "$work/check.log" || { cat "$work/check.log"; fail "spool not writable by graphrelay"; }
	[ "$(stat -c %U:%a /var/lib/graphrelay/spool)" = graphrelay:700 ] || fail "spool owner/mode $(stat -c %U:%a /var/lib/graphrelay/spool)"
	# An admin's edit and a spooled message, which removal must keep.
	echo "# edited by the package test" >>/etc/graphrelay/graphrelay.yaml
	install -d -o graphrelay -g graphrelay -m 0700 /var/lib/graphrelay/spool/queue
	echo "queued mail" >/var/lib/graphrelay/spool/queue/marker
	dpkg -r graphrelay >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
	[ ! -e /usr/bin/graphrelay ] || fail "dpkg -r left /usr/bin/graphrelay"
	grep -q '^# edited by the package test$' /etc/graphrelay/graphrelay.yaml || fail "dpkg -r did not keep the configuration"
	[ -f /var/lib/graphrelay/spool/queue/marker ] || fail "dpkg -r deleted the non-empty spool"
	echo "deb: installed, checked, removed; configuration and spool kept"
	uninstall
	trap 'rm -rf "$work"' EXIT
else
	echo "not root: $deb built, not installed"
fi

# The OCI image, from the same binary, checked without a daemon. Its
# builder's own tests keep it in step with the Dockerfile.
(cd packaging/oci && go vet ./... && go test -count=1 ./...)
image="$out/graphrelay-oci-$arch.tar"
(cd packaging/oci && go run . build -binary "$binary" -arch "$arch" -config ../container.yaml \
	-version "$describe" -out "$OLDPWD/$image")
(cd packaging/oci && go run . inspect -image "$OLDPWD/$image" -binary "$binary")
# inspect must notice a binary that is not the build.
if (cd packaging/oci && go run . inspect -image "$OLDPWD/$image" -binary "$OLDPWD/packaging/graphrelay.yaml") >/dev/null 2>&1; then
	fail "inspect accepted a binary that is not the build"
fi
if [ -n "$root" ] && command -v chroot >/dev/null 2>&1; then
	(cd packaging/oci && go run . export -image "$OLDPWD/$image" -dir "$work/rootfs")
	# The image's environment only, as a runtime would give it.
	chroot="$(command -v chroot)"
	env -i GRAPHRELAY_CONFIG=/etc/graphrelay/graphrelay.yaml "$chroot" --userspec=65532:65532 "$work/rootfs" /graphrelay version
	env -i GRAPHRELAY_CONFIG=/etc/graphrelay/graphrelay.yaml "$chroot" --userspec=65532:65532 "$work/rootfs" /graphrelay check ||
		fail "graphrelay check inside the image's filesystem"
fi
echo "packages: $deb $rpmfile $image"
