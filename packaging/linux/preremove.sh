#!/bin/sh
# Before removal (not upgrade): stop the service, which finishes open SMTP
# sessions and in-flight Graph requests first. Queued mail stays in the
# spool.
set -e
case "$1" in
upgrade | 1) exit 0 ;; # deb upgrade; rpm: 1 package left means upgrade
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now graphrelay >/dev/null 2>&1 || true
fi
