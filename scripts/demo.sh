#!/usr/bin/env bash
# `make demo`: the dev cluster up, the CRDs and one sample of each kind applied, then shown.
set -euo pipefail
cd "$(dirname "$0")/.."
ctl=.venv/bin/enclavectl
bin=$(.venv/bin/python -c 'from enclave_operator.devcluster.binaries import toolset; print(toolset().directory)')
kubectl="$bin/kubectl"

if $ctl dev-cluster status >/dev/null 2>&1; then
  echo "dev cluster already running: reusing it"
else
  $ctl dev-cluster up
fi
export KUBECONFIG=$($ctl dev-cluster kubeconfig)
ns=enclave-demo

$kubectl apply --server-side -f config/crd
$kubectl wait --for=condition=Established --timeout=60s -f config/crd
$kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f -
$kubectl apply -n "$ns" -f config/samples
echo
$kubectl get nodes -L feature.node.kubernetes.io/cpu-sgx.enabled
echo
$kubectl get enclave -A
cat <<MSG

The dev cluster keeps running. To use it:
  export KUBECONFIG=$KUBECONFIG
  $kubectl get enclave -A
Stop it with: .venv/bin/enclavectl dev-cluster down
MSG
