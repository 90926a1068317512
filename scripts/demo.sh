#!/usr/bin/env bash
# `make demo`: the dev cluster, the CRDs, the operator (a local process: kwok runs no containers)
# and one sample of each kind, waited on until the services are HEALTHY.
set -euo pipefail
cd "$(dirname "$0")/.."
ctl=.venv/bin/enclavectl
py=.venv/bin/python
kubectl=$($py -c 'from enclave_operator.devcluster.binaries import toolset; print(toolset().path("kubectl"))')

if $ctl dev-cluster status >/dev/null 2>&1; then
  echo "dev cluster already running: reusing it"
else
  $ctl dev-cluster up
fi
export KUBECONFIG=$($ctl dev-cluster kubeconfig)
dir=$($ctl dev-cluster status -o json | $py -c 'import json,sys; print(json.load(sys.stdin)["directory"])')
demo_ns=enclave-demo
operator_ns=enclave-system

$kubectl apply --server-side -f config/crd
$kubectl wait --for=condition=Established --timeout=60s -f config/crd
for ns in "$operator_ns" "$demo_ns"; do
  $kubectl create namespace "$ns" --dry-run=client -o yaml | $kubectl apply -f -
done

if [ -s "$dir/operator.pid" ] && kill -0 "$(cat "$dir/operator.pid")" 2>/dev/null; then
  echo "operator already running (pid $(cat "$dir/operator.pid"))"
else
  KUBECONFIG=$dir/operator.kubeconfig OPERATOR_NAMESPACE=$operator_ns nohup $ctl operator run >"$dir/logs/operator.log" 2>&1 &
  echo $! >"$dir/operator.pid"
  echo "operator started (pid $!, log $dir/logs/operator.log)"
fi

# LAS and SGXPlugin are cluster-scoped: they run in the operator's namespace.
$kubectl apply -f config/samples/base_v1beta1_las.yaml -f config/samples/base_v1beta1_sgxplugin.yaml
$kubectl apply -n "$demo_ns" -f config/samples/services_v1beta1_cas.yaml \
  -f config/samples/cas_v1beta1_signedpolicy.yaml -f config/samples/cas_v1beta1_encryptedpolicy.yaml

echo "waiting for the services to be HEALTHY ..."
$kubectl wait --for=jsonpath='{.status.state}'=HEALTHY --timeout=180s las/las-sample sgxplugin/sgxplugin-sample
$kubectl wait --for=jsonpath='{.status.state}'=HEALTHY --timeout=180s -n "$demo_ns" cas/cas-sample
echo
$kubectl get nodes -L feature.node.kubernetes.io/cpu-sgx.enabled
echo
$kubectl get enclave -A
echo
$kubectl get deploy,ds,svc,pvc -n "$operator_ns"
$kubectl get deploy,ds,svc,pvc -n "$demo_ns"
cat <<MSG

Everything keeps running. To look around:
  export KUBECONFIG=$KUBECONFIG
  $kubectl describe cas cas-sample -n $demo_ns
The operator's log: $dir/logs/operator.log
Stop it all (cluster and operator): .venv/bin/enclavectl dev-cluster down
MSG
