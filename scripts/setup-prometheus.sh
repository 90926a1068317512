#!/usr/bin/env bash
# Installs Debian's prometheus package (the server and promtool) when it is missing: the
# tests check the shipped alert rules with promtool and run a server of their own on loopback
# with a temporary data directory. The package's own service is stopped and disabled, so no
# second Prometheus keeps running with the package's defaults (:9090, /var/lib/prometheus).
# Needs root to install; runs apt-get update only when something is to be installed. A no-op,
# in a few milliseconds, otherwise.
set -euo pipefail
dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed' && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-prometheus: need root to install prometheus" >&2; exit 1
fi
echo "setup-prometheus: installing prometheus" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Without recommends: no prometheus-node-exporter, whose service would start too.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
else
  # Without systemd the package's init script may have started it (unless policy-rc.d said no).
  if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
  update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
