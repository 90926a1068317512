#!/usr/bin/env bash
# Installs Debian's docker-registry (the CNCF distribution registry, 2.8) and apache2-utils (its
# `htpasswd`, for the registry's bcrypt password file) when missing: `dev-cluster up` runs a
# registry of its own on loopback with TLS and basic auth, its data in the cluster's directory.
# The package's own service is stopped and disabled, so no second registry keeps :5000 and
# /var/lib/docker-registry. Needs root to install; runs apt-get update only when something is
# to be installed. A no-op, in a few milliseconds, otherwise.
set -euo pipefail
packages=(docker-registry apache2-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-registry: need root to install ${missing[*]}" >&2; exit 1
fi
echo "setup-registry: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -d /run/systemd/system ]; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
else
  if [ -x /etc/init.d/docker-registry ]; then /etc/init.d/docker-registry stop >/dev/null 2>&1 || true; fi
  update-rc.d docker-registry disable >/dev/null 2>&1 || true
fi
