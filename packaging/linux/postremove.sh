#!/bin/sh
# After removal: forget the unit. The configuration (dpkg -r keeps
# conffiles), the spool and the user stay: queued mail is never deleted by
# the package, and a reinstall picks it up. Remove /var/lib/graphrelay by
# hand once "graphrelay queue list" shows nothing you need.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ -d /var/lib/graphrelay/spool ] && [ -n "$(ls -A /var/lib/graphrelay/spool 2>/dev/null)" ]; then
	echo "graphrelay: the spool /var/lib/graphrelay/spool is kept; it still holds data"
fi
