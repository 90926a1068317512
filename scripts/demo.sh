#!/usr/bin/env bash
# `make demo`: the dev cluster, then `enclavectl install --simulation --local-operator` (the
# chart, the CRDs, a default SGXPlugin, LAS and CAS, and the operator as a local process,
# because kwok runs no containers), waited on until HEALTHY, then `enclavectl status`.
# Running it again reuses the cluster and the installation (and restarts a stopped operator).
set -euo pipefail
cd "$(dirname "$0")/.."
ctl=.venv/bin/enclavectl

if $ctl dev-cluster status >/dev/null 2>&1; then
  echo "dev cluster already running: reusing it"
else
  $ctl dev-cluster up
fi
export KUBECONFIG=$($ctl dev-cluster kubeconfig)

$ctl install --simulation --local-operator --timeout 3m
echo
$ctl status
cat <<MSG

Everything keeps running. To look around:
  export KUBECONFIG=$KUBECONFIG
  $ctl status          # or: $ctl check, kubectl get enclave -A
Remove the installation: $ctl uninstall
Stop it all (cluster and operator): $ctl dev-cluster down
MSG
