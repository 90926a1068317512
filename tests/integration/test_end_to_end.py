"""The whole system on the dev cluster's real node, as a user runs it: `enclavectl install
--simulation` (the operator in-cluster), services that really run and report their versions,
a signed policy the in-cluster operator registers in the in-cluster CAS, and a workload pod
that requests an SGX device, is attested through LAS and CAS and receives its secret."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from enclave_operator import __version__
from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.nodeconf import NODE_NAME, REAL_NODE_LABEL
from tests.integration.conftest import Cluster
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.real_node
IMAGE = "enclave-operator:0.1.0"
NS = "enclave-system"
SECRET = "s3cret-" + uuid.uuid4().hex[:8]
SCRIPT = (
    "import os, hashlib, time; "
    "print('secret digest', hashlib.sha256(os.environ['PASSWORD'].encode()).hexdigest()); "
    "time.sleep(float(os.environ.get('HOLD', '0')))"
)
PROGRAM = ["python3", "-c", SCRIPT]


def enclavectl(
    kubeconfig: str, *args: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enclave_operator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of its own with only the real node, and the installation on it."""
    dev = DevCluster(tmp_path_factory.mktemp("e2e") / "dev")
    try:
        tools = ensure_built(node=True)
        dev.up(nodes=0, real_nodes=1, say=print)
    except Exception as e:
        dev.down(say=lambda _: None)
        pytest.fail(f"the real node did not come up: {type(e).__name__}: {e}", pytrace=False)
    try:
        cluster = Cluster(str(dev.kubeconfig), tools.directory)
        done = enclavectl(cluster.kubeconfig, "install", "--simulation", "--timeout", "5m")
        assert done.returncode == 0, done.stdout + done.stderr
        yield cluster
    finally:
        dev.down(say=lambda _: None)


def get(cluster: Cluster, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return out


def pod(
    ns: str, name: str, command: list[str], env: dict[str, str], sgx: bool = True
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {REAL_NODE_LABEL: "true"},
            "volumes": [{"name": "ca", "configMap": {"name": "cas-ca"}}],
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "resources": {"limits": {"sgx.k8s.io/sgx": "1"}} if sgx else {},
                    "volumeMounts": [{"name": "ca", "mountPath": "/etc/cas-ca"}],
                    "env": [
                        {
                            "name": "SCONE_LAS_ADDR",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}},
                        },
                        {"name": "SCONE_CAS_ADDR", "value": f"cas-enclave.{NS}.svc:18765"},
                        {"name": "SCONE_CAS_CA", "value": "/etc/cas-ca/ca.crt"},
                        *({"name": k, "value": v} for k, v in env.items()),
                    ],
                }
            ],
        },
    }


def finished(cluster: Cluster, ns: str, name: str) -> tuple[str, str]:
    phase = wait_for(
        lambda: get(cluster, "pod", name, "-n", ns).get("status", {}).get("phase"),
        lambda p: p in ("Succeeded", "Failed"),
        120,
        f"pod {name} to finish",
    )
    logs = cluster.kubectl("logs", name, "-n", ns, check=False).stdout
    if phase == "Failed" and not logs:  # refused before it ran (kubelet admission): say why
        status = get(cluster, "pod", name, "-n", ns).get("status", {})
        return "FailedToRun", f"{status.get('reason')}: {status.get('message')}"
    return str(phase), logs


def test_services_run_and_report_their_own_versions(installed: Cluster):
    pods = get(installed, "pods", "-n", NS)["items"]
    names = sorted(p["metadata"]["name"] for p in pods)
    for prefix in ("enclave-operator", "cas-enclave", "las-enclave", "sgxplugin-enclave"):
        found = [p for p in pods if p["metadata"]["name"].startswith(prefix)]
        assert found, f"no {prefix} pod: {names}"
        assert all(p["spec"]["nodeName"] == NODE_NAME for p in found)
        assert all(p["status"]["phase"] == "Running" for p in found)
    for kind, ns in (("cas", ["-n", NS]), ("las", []), ("sgxplugins", [])):

        def status(kind: str = kind, ns: list[str] = ns) -> dict[str, Any]:
            found: dict[str, Any] = get(installed, kind, *ns)["items"][0]["status"]
            return found

        wait_for(
            status,
            lambda s: s.get("state") == "HEALTHY" and s.get("version", __version__) == __version__,
            120,
            f"{kind} HEALTHY",
        )
    # the version comes from the services themselves, not the image tag
    assert get(installed, "cas", "-n", NS)["items"][0]["status"]["version"] == __version__
    assert get(installed, "las")["items"][0]["status"]["version"] == __version__
    assert advertised(installed) > 0


def test_las_enrols_authenticated_with_the_certificate_install_issued(installed: Cluster):
    """enclavectl install issues the LAS's client certificate from the CAS's CA (Secret
    las-enclave-client); the LAS chart mounts it, and CAS records the enrolment as
    authenticated, not as a simulation's unauthenticated one."""

    def logs() -> str:
        return installed.kubectl(
            "logs", "-n", NS, "-l", "app.kubernetes.io/name=las", "--tail=-1"
        ).stdout

    text = wait_for(logs, lambda t: "enrolled key" in t, 120, "the LAS to enrol")
    assert "enrolling with client certificate /etc/las/client/tls.crt" in text, text
    enrolled = [line for line in text.splitlines() if "enrolled key" in line]
    assert enrolled[-1].endswith(", authenticated)"), enrolled


def advertised(cluster: Cluster) -> int:
    """The plugin's devices on the real node, once the kubelet has posted them (a node that
    advertises none is left out of the figures, so HEALTHY does not wait for them)."""
    allocatable = wait_for(
        lambda: get(cluster, "node", NODE_NAME)["status"]["allocatable"],
        lambda a: "sgx.k8s.io/sgx" in a,
        60,
        "the node to advertise sgx.k8s.io/sgx",
    )
    return int(allocatable["sgx.k8s.io/sgx"])


def test_the_plugin_advertises_its_nodes_allocatable_pods(installed: Cluster):
    """No capacitySGXPods: no flag, and the plugin read its Node with its own ServiceAccount.
    Both sides are 110 here, so the plugin's own log line tells a read Node from the fallback."""
    (daemonset,) = get(
        installed, "daemonsets", "-n", NS, "-l", "app.kubernetes.io/name=sgx-plugin"
    )["items"]
    command = daemonset["spec"]["template"]["spec"]["containers"][0]["command"]
    assert not [a for a in command if a.startswith("--capacity-sgx-pods")], command
    pods = int(get(installed, "node", NODE_NAME)["status"]["allocatable"]["pods"])
    logs = installed.kubectl(
        "logs", "-n", NS, "-l", "app.kubernetes.io/name=sgx-plugin", "--tail=-1"
    ).stdout
    assert f"capacity: {pods} devices, the allocatable pods of node {NODE_NAME}" in logs, logs
    assert advertised(installed) == pods


@pytest.fixture(scope="module")
def registered(installed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A namespace whose signed policy e2e (the measured PROGRAM gets PASSWORD) is REGISTERED
    in the in-cluster CAS by the in-cluster operator."""
    tmp_path = tmp_path_factory.mktemp("policy")
    ns = f"t-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", ns)
    # the measurement is taken where the workload runs: the same image, the same program
    installed.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            # measuring needs no SGX device
            pod(ns, "measure", ["enclavectl", "enclave", "measure", "--", *PROGRAM], {}, False)
        ),
        check=False,
    )
    ca = base64.b64decode(get(installed, "secret", "cas-enclave-tls", "-n", NS)["data"]["ca.crt"])
    (tmp_path / "ca.crt").write_bytes(ca)
    installed.kubectl(
        "create", "configmap", "cas-ca", "-n", ns, f"--from-file={tmp_path / 'ca.crt'}"
    )
    phase, measurement = finished(installed, ns, "measure")
    assert phase == "Succeeded", measurement
    measurement = measurement.strip()

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: e2e\n"
        "services:\n"
        "  - name: app\n"
        f"    measurement: {measurement}\n"
        f"    command: {json.dumps(PROGRAM)}\n"
        "    secrets: {PASSWORD: password}\n"
        "secrets:\n"
        "  - name: password\n"
        f"    value: {SECRET}\n"
    )
    kc = installed.kubeconfig
    assert enclavectl(kc, "policy", "keygen", str(tmp_path / "key")).returncode == 0
    signed = enclavectl(kc, "policy", "sign", "--key", str(tmp_path / "key"), "-n", ns, str(policy))
    assert signed.returncode == 0, signed.stderr
    installed.kubectl("apply", "-f", "-", input=signed.stdout)
    status = wait_for(
        lambda: get(installed, "spol", "e2e", "-n", ns).get("status") or {},
        lambda s: s.get("state") in ("REGISTERED", "FAILED"),
        120,
        "the policy registered",
    )
    assert status["state"] == "REGISTERED", status
    assert status["casURL"] == f"https://cas-enclave.{NS}.svc:8081"
    return ns


def test_a_signed_policy_reaches_the_cas_and_a_workload_gets_its_secret(
    installed: Cluster, registered: str
):
    ns = registered
    env = {"SCONE_CONFIG_ID": "e2e/app", "HOLD": "20"}
    installed.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            pod(ns, "workload", ["enclavectl", "enclave", "run", "--", *PROGRAM], env)
        ),
    )
    # while it runs, the SGXPlugin counts the device it was given
    wait_for(
        lambda: get(installed, "sgxplugins")["items"][0]["status"].get("usedSGXDevices"),
        lambda used: used == 1,
        60,
        "usedSGXDevices 1 while the workload runs",
    )
    phase, logs = finished(installed, ns, "workload")
    assert phase == "Succeeded", logs
    assert f"secret digest {hashlib.sha256(SECRET.encode()).hexdigest()}" in logs
    assert SECRET not in logs

    other = ["python3", "-c", SCRIPT + " # another program"]
    installed.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(pod(ns, "intruder", ["enclavectl", "enclave", "run", "--", *other], env)),
    )
    phase, logs = finished(installed, ns, "intruder")
    assert phase == "Failed", logs
    assert "error:" in logs
    assert SECRET not in logs
    assert "secret digest" not in logs


def test_an_injected_pod_is_attested_with_nothing_but_a_label_and_a_config_id(
    installed: Cluster, registered: str
):
    """The in-cluster webhook, reached through its Service, gives a pod that only opts in
    everything `enclavectl enclave run` needs: LAS at the node's address, the CAS address and
    CA, the config id, simulation mode."""
    ns = registered
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "injected",
            "namespace": ns,
            "labels": {"enclave.dev/inject": "true"},
            "annotations": {"enclave.dev/config-id": "e2e/app"},
        },
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {REAL_NODE_LABEL: "true"},
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["enclavectl", "enclave", "run", "--", *PROGRAM],
                }
            ],
        },
    }
    installed.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    created = get(installed, "pod", "injected", "-n", ns)
    assert "enclave.dev/injected" in created["metadata"]["annotations"], created["metadata"]
    env = {e["name"]: e for e in created["spec"]["containers"][0]["env"]}
    assert env["SCONE_CONFIG_ID"]["value"] == "e2e/app"
    assert env["SCONE_MODE"]["value"] == "SIM"
    phase, logs = finished(installed, ns, "injected")
    assert phase == "Succeeded", logs
    assert f"secret digest {hashlib.sha256(SECRET.encode()).hexdigest()}" in logs
