"""`enclavectl dev-cluster` as a user runs it: up, a refused second up, status, down."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.binaries import pinned_versions, toolset


def unreachable(address: str) -> bool:
    """Whether an ``unreachable`` route covers ``address``."""
    routes = subprocess.run(
        ["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    nets = [line.split()[1] for line in routes if len(line.split()) > 1]
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(n) for n in nets)


def enclavectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enclave_operator.cli", "dev-cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_up_status_down(tmp_path: Path):
    directory = tmp_path / "cluster"
    t0 = time.monotonic()
    up = enclavectl(
        "up", "--nodes", "2", "--sgx", "azure", "--real-nodes", "0", "--dir", str(directory)
    )
    elapsed = time.monotonic() - t0
    assert up.returncode == 0, up.stderr
    print(f"dev-cluster up (cached binaries) took {elapsed:.1f}s")
    try:
        status = json.loads(enclavectl("status", "-o", "json", "--dir", str(directory)).stdout)
        assert status["running"] is True
        assert status["components"] == dict.fromkeys(
            [
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kwok",
                "registry",  # docker-registry, on loopback with TLS and basic auth
            ],
            "running",
        )
        assert status["registry"].startswith("127.0.0.1:")
        again = enclavectl("up", "--dir", str(directory))
        assert again.returncode == 1
        assert "already running" in again.stderr

        kubeconfig = enclavectl("kubeconfig", "--dir", str(directory)).stdout.strip()
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        kubectl = str(toolset().path("kubectl"))
        nodes = json.loads(
            subprocess.run(
                [kubectl, "get", "nodes", "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["items"]
        assert len(nodes) == 2
        for node in nodes:
            assert node["status"]["allocatable"]["kubernetes.azure.com/sgx_epc_mem_in_MiB"] == "128"
            assert "sgx.intel.com/epc" not in node["status"]["allocatable"]
        version = json.loads(
            subprocess.run(
                [kubectl, "version", "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert version["serverVersion"]["gitVersion"] == pinned_versions()["KUBERNETES_VERSION"]
        if os.geteuid() == 0:  # simulated pods' addresses never leave the machine
            assert unreachable("10.244.3.7")
        volume = _bound_volume_path(kubectl, env)
        assert volume.is_dir()
        pids = [c["pid"] for c in json.loads((directory / "state.json").read_text())["components"]]
    finally:
        down = enclavectl("down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert not directory.exists(), "down left files behind"
    assert not any(processes.alive(pid) for pid in pids), "down left processes behind"
    assert not volume.exists(), "down left a provisioned volume behind"
    after = enclavectl("status", "--dir", str(directory))
    assert after.returncode == 1


PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def _bound_volume_path(kubectl: str, env: dict[str, str]) -> Path:
    def run(*args: str, input: str | None = None) -> str:
        return subprocess.run(
            [kubectl, *args], env=env, input=input, capture_output=True, text=True, check=True
        ).stdout

    run("apply", "-f", "-", input=PVC)
    run(
        "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/data", "-n", "default", "--timeout=60s"
    )
    pv = run("get", "pvc", "data", "-n", "default", "-o", "jsonpath={.spec.volumeName}")
    return Path(run("get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}"))
