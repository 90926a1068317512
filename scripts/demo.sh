#!/usr/bin/env bash
# `make demo`: the dev cluster with its real node only (this machine: kubelet, containerd,
# runc, CNI, kube-proxy, CoreDNS), so that every pod really runs the locally built image; then
# `enclavectl install --simulation`: the chart, the CRDs, the operator as the chart's
# Deployment, and a default SGXPlugin, LAS and CAS, waited on until HEALTHY; then a signed
# policy and an attested workload (scripts/demo-workload.sh); then `enclavectl status` and the
# pods. Running it again reuses the cluster and the installation.
set -euo pipefail
cd "$(dirname "$0")/.."
ctl=.venv/bin/enclavectl

if $ctl dev-cluster status >/dev/null 2>&1; then
  echo "dev cluster already running: reusing it"
else
  $ctl dev-cluster up --nodes 0 --real-nodes 1
fi
export KUBECONFIG=$($ctl dev-cluster kubeconfig)
kubectl="$(.venv/bin/python -c 'from enclave_operator.devcluster.binaries import toolset; print(toolset().path("kubectl"))')"

$ctl install --simulation --timeout 5m
echo
bash scripts/demo-workload.sh
echo
$ctl status
echo
"$kubectl" get pods -A -o wide
cat <<MSG

Everything keeps running, in containers on the real node. To look around:
  export KUBECONFIG=$KUBECONFIG
  $ctl status          # or: $ctl check, kubectl get enclave -A, kubectl logs -n enclave-system ...
Remove the installation: $ctl uninstall
Stop it all (cluster, node, containers): $ctl dev-cluster down
MSG
