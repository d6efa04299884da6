#!/bin/sh
# After install or upgrade: the service user, the state directory's owner,
# and systemd's view of the unit. The service is not started: it needs the
# tenant's details in /etc/graphrelay/graphrelay.yaml first.
set -e

if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/graphrelay.conf
elif ! getent passwd graphrelay >/dev/null; then
	useradd --system --user-group --home-dir /var/lib/graphrelay --no-create-home \
		--shell /usr/sbin/nologin --comment "graphrelay SMTP relay" graphrelay
fi
chown graphrelay:graphrelay /var/lib/graphrelay /var/lib/graphrelay/spool
chmod 0750 /var/lib/graphrelay
chmod 0700 /var/lib/graphrelay/spool

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if systemctl is-active --quiet graphrelay; then
		systemctl try-restart graphrelay || true
	fi
fi

cat <<'MSG'
graphrelay is installed but not started. Next:
  1. fill in graph.tenant_id, graph.client_id and the credential in
     /etc/graphrelay/graphrelay.yaml (docs/tenant-setup.md);
  2. graphrelay check --config /etc/graphrelay/graphrelay.yaml
  3. systemctl enable --now graphrelay
MSG
