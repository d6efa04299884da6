#!/usr/bin/env bash
# Builds the Windows installer from packaging/windows/graphrelay.wxs with
# msitools' wixl, then checks its tables with msiinfo.
#
#   .ci/msi.sh BINDIR VERSION OUTDIR    BINDIR holds graphrelay.exe
#
# MSI versions are three numbers that must grow from release to release for
# an upgrade to replace the installed one: VERSION's leading x.y.z when it
# has one (a v1.2.3 tag), else 0.0.N with N the commit count, so that
# successive development builds upgrade each other too.
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=$1 version=$2 outdir=$3

if [[ $version =~ ^v?([0-9]+\.[0-9]+\.[0-9]+) ]]; then
	msiver=${BASH_REMATCH[1]}
else
	msiver="0.0.$(git rev-list --count HEAD 2>/dev/null || echo 0)"
fi
msi="$outdir/graphrelay-$msiver-x64.msi"

# wixl takes sources relative to the working directory. The configuration
# gets Windows line endings, for Notepad on older Windows Server.
stage="dist/msi-stage"
rm -rf "$stage"
mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT
cp "$bindir/graphrelay.exe" "$stage/"
sed 's/$/\r/' packaging/windows/graphrelay.yaml >"$stage/graphrelay.yaml"
wixl -a x64 -D Version="$msiver" -D SourceDir="$stage" -D PackagingDir="$stage" \
	-o "$msi" packaging/windows/graphrelay.wxs 2> >(grep -v -e '^$' -e 'GLib' >&2 || true)
# Permanent (16) and NeverOverwrite (128) on the configuration's component,
# besides 64-bit (256): an upgrade or repair keeps an edited
# graphrelay.yaml, and an uninstall leaves it. wixl has no attribute for
# either, so they are set in the Component table directly.
msibuild "$msi" -q "UPDATE Component SET Attributes = 400 WHERE Component = 'Config'"

# The tables must say what packaging/windows/graphrelay.wxs promises.
fail=0
# msiinfo export prints three header lines (names, types, keys), then rows.
rows() { msiinfo export "$msi" "$1" | tr -d '\r' | tail -n +4; }
expect() { # table, description, extended regexp over its tab-separated rows
	if ! rows "$1" | grep -E "$3" >/dev/null; then
		echo "MSI check failed: $1 table: $2"
		rows "$1" | sed 's/^/    /'
		fail=1
	fi
}
refuse() { # table, description, regexp that must not match
	if rows "$1" | grep -E "$3" >/dev/null; then
		echo "MSI check failed: $1 table: $2"
		fail=1
	fi
}
tab=$'\t'
expect Property "the upgrade code" "^UpgradeCode${tab}\{0e7d2234-33bb-426c-985a-fcef12dd83fc\}$"
expect Property "the version" "^ProductVersion${tab}${msiver//./\\.}$"
expect Upgrade "older versions are replaced (major upgrade)" "^\{0E7D2234-33BB-426C-985A-FCEF12DD83FC\}${tab}${tab}${msiver//./\\.}${tab}"
expect Directory "the binary's folder under Program Files" "^INSTALLDIR${tab}ProgramFiles64Folder${tab}graphrelay$"
expect Directory "the configuration's folder under ProgramData" "^CONFIGDIR${tab}CommonAppDataFolder${tab}graphrelay$"
expect File "graphrelay.exe in the binary's component" "^graphrelay\.exe${tab}Binary${tab}graphrelay\.exe${tab}"
expect File "graphrelay.yaml in the configuration's component" "^graphrelay\.yaml${tab}Config${tab}graphrelay\.yaml${tab}"
expect Component "a Permanent, NeverOverwrite configuration" "^Config${tab}\{[0-9A-F-]+\}${tab}CONFIGDIR${tab}400${tab}"
# Own process (16), manual start (3) until configured, LocalSystem.
expect ServiceInstall "the service, manual start, with its configuration" \
	"^Service${tab}graphrelay${tab}[^${tab}]*${tab}16${tab}3${tab}1${tab}${tab}${tab}LocalSystem${tab}${tab}service run --name graphrelay --config \"\[CONFIGDIR\]graphrelay\.yaml\"${tab}Binary${tab}"
# 162 = stop at install (2), stop (32) and delete (128) at uninstall; no start.
expect ServiceControl "stopped for an upgrade, removed at uninstall, never started" "^Service${tab}graphrelay${tab}162${tab}"
expect Registry "the event log source" "^reg[0-9A-F]+${tab}2${tab}SYSTEM\\\\CurrentControlSet\\\\Services\\\\EventLog\\\\Application\\\\graphrelay${tab}EventMessageFile${tab}"
refuse RemoveFile "nothing removes files the MSI did not install (the spool)" "."
refuse CreateFolder "the MSI does not own the spool's folder" "spool"
if ((fail)); then
	exit 1
fi
printf '%-14s %10d bytes  %s (tables checked)\n' "msi" "$(wc -c <"$msi")" "$msi"
