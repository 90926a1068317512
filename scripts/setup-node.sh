#!/usr/bin/env bash
# Installs the Debian packages the dev cluster's real node needs, when any is missing:
# containerd and runc (the container runtime), the CNI plugins (bridge, host-local, loopback,
# portmap), iptables (kube-proxy and portmap write rules, inside the node's network namespace
# only) and mmdebstrap (the base of the locally built images). Needs root; runs apt-get
# update once, only when something is to be installed. A no-op, in a few milliseconds, otherwise.
set -euo pipefail
packages=(containerd runc containernetworking-plugins iptables mmdebstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-node: need root to install ${missing[*]}" >&2; exit 1
fi
echo "setup-node: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No init system starts the packaged containerd service here; the dev cluster runs its own.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
