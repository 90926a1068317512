#!/usr/bin/env bash
# The second half of `make demo`: a confidential workload end to end on the real node.
# 1. measure the workload's program inside the project's image (where it will run);
# 2. sign a policy granting that measurement a secret, and apply it: the in-cluster operator
#    registers it in the in-cluster CAS (kubectl get spol shows REGISTERED);
# 3. run the workload under `enclavectl enclave run`, requesting one sgx.k8s.io/sgx device:
#    LAS quotes it, CAS verifies the quote and releases the secret, the program prints a digest
#    of it. Running it again replaces the demo namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
ctl=.venv/bin/enclavectl
kubectl="$(.venv/bin/python -c 'from enclave_operator.devcluster.binaries import toolset; print(toolset().path("kubectl"))')"
ns=enclave-demo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$kubectl" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
"$kubectl" create namespace "$ns" >/dev/null
"$kubectl" get secret -n enclave-system cas-enclave-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca.crt"
"$kubectl" create configmap cas-ca -n "$ns" --from-file="$work/ca.crt" >/dev/null

script="import os, hashlib; print('workload: got a secret whose sha256 is', hashlib.sha256(os.environ['GREETING'].encode()).hexdigest()[:16])"
pod() {  # name, enclavectl arguments...
  local name=$1; shift
  local args; args=$(printf '%s\n' "$@" | .venv/bin/python -c 'import json,sys; print(json.dumps(sys.stdin.read().splitlines()))')
  cat <<POD
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "$name", "namespace": "$ns"},
 "spec": {"restartPolicy": "Never", "nodeSelector": {"enclave.dev/real-node": "true"},
  "volumes": [{"name": "ca", "configMap": {"name": "cas-ca"}}],
  "containers": [{"name": "app", "image": "enclave-operator:0.1.0", "imagePullPolicy": "IfNotPresent",
   "command": $args, "resources": {"limits": {"sgx.k8s.io/sgx": "1"}},
   "volumeMounts": [{"name": "ca", "mountPath": "/etc/cas-ca"}],
   "env": [{"name": "SCONE_LAS_ADDR", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
           {"name": "SCONE_CAS_ADDR", "value": "cas-enclave.enclave-system.svc:18765"},
           {"name": "SCONE_CAS_CA", "value": "/etc/cas-ca/ca.crt"},
           {"name": "SCONE_CONFIG_ID", "value": "demo/hello"}]}]}}
POD
}
wait_done() {
  for _ in $(seq 120); do
    phase=$("$kubectl" get pod "$1" -n "$ns" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && { echo "$phase"; return; }
    sleep 0.5
  done
  echo "timeout"
}

echo "== measuring the workload in the image it runs in"
pod measure enclavectl enclave measure -- python3 -c "$script" | "$kubectl" apply -f - >/dev/null
[[ $(wait_done measure) == Succeeded ]] || { "$kubectl" logs measure -n "$ns"; exit 1; }
measurement=$("$kubectl" logs measure -n "$ns")
echo "   measurement $measurement"

echo "== signing a policy that gives this measurement a secret, and applying it"
command=$(.venv/bin/python -c 'import json,sys; print(json.dumps(["python3", "-c", sys.argv[1]]))' "$script")
cat >"$work/policy.yaml" <<POLICY
name: demo
services:
  - name: hello
    measurement: $measurement
    command: $command
    secrets: {GREETING: greeting}
secrets:
  - name: greeting
    value: hello from the CAS, $(date +%s)
POLICY
$ctl policy keygen "$work/signer" >/dev/null
$ctl policy sign --key "$work/signer" -n "$ns" "$work/policy.yaml" | "$kubectl" apply -f - >/dev/null
for _ in $(seq 60); do
  state=$("$kubectl" get spol demo -n "$ns" -o jsonpath='{.status.state}')
  [[ $state == REGISTERED || $state == FAILED ]] && break
  sleep 0.5
done
"$kubectl" get spol -n "$ns"

echo "== running the workload under enclavectl enclave run (attested through LAS and CAS)"
pod hello enclavectl enclave run -- python3 -c "$script" | "$kubectl" apply -f - >/dev/null
phase=$(wait_done hello)
"$kubectl" logs hello -n "$ns"
[[ $phase == Succeeded ]] || { echo "the workload did not get its secret ($phase)"; exit 1; }
