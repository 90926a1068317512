"""A dev cluster of its own with its registry, and an operator that trusts the registry's CA
and checks every AUTO_UPDATE_INTERVAL seconds: the autoUpdate and pull-secret tests."""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from kubernetes import client, config

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.registry import BINARY, Registry
from tests.integration.conftest import ROOT, Cluster
from tests.integration.operator_process import OperatorProcess

INTERVAL = 2.0  # seconds between registry checks in these tests
OPERATOR_NAMESPACE = "enclave-system"
REPOSITORY = "enclave-operator"


@dataclass
class RegistryEnv:
    dev: DevCluster
    cluster: Cluster
    registry: Registry
    api: client.ApiClient
    operator: OperatorProcess

    def registry_pid(self) -> int:
        state = self.dev.state()
        assert state is not None
        (comp,) = [c for c in state.components if c.name == "registry"]
        return comp.pid

    def stop_registry(self) -> None:
        processes.stop(self.registry_pid(), BINARY)

    def pull_secret(
        self, namespace: str, name: str, password: str | None = None, type_: str | None = None
    ) -> None:
        doc = self.registry.dockerconfig(password=password)
        body: dict[str, Any] = {
            "metadata": {"name": name},
            "type": type_ or "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(doc.encode()).decode()},
        }
        secret = client.V1Secret.model_validate(body)
        client.CoreV1Api(self.api).create_namespaced_secret(namespace, secret)

    def events(self, namespace: str, name: str) -> list[Any]:
        core = client.CoreV1Api(self.api)
        found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        return list(found.items)


@contextmanager
def registry_env(real_nodes: int = 0) -> Iterator[RegistryEnv]:
    tools = ensure_built(node=real_nodes > 0)
    with tempfile.TemporaryDirectory(prefix="enclave-registry-") as tmp:
        dev = DevCluster(Path(tmp) / "dev")
        dev.up(nodes=2, say=print, real_nodes=real_nodes)
        try:
            reg = Registry.load(dev.directory)
            assert reg is not None, "dev-cluster up started no registry"
            cluster = Cluster(str(dev.kubeconfig), tools.directory)
            crd = str(ROOT / "config" / "crd")
            cluster.kubectl("apply", "--server-side", "-f", crd)
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crd)
            cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE)
            api: client.ApiClient = config.new_client_from_config(str(dev.kubeconfig))  # type: ignore[no-untyped-call]
            op = OperatorProcess(str(dev.kubeconfig), OPERATOR_NAMESPACE, Path(tmp) / "op.log")
            env = {"REGISTRY_CA": reg.ca, "AUTO_UPDATE_INTERVAL": str(INTERVAL)}
            with mock.patch.dict(os.environ, env):
                op.start()
            try:
                yield RegistryEnv(dev, cluster, reg, api, op)
            finally:
                op.stop()
                print(f"operator log tail:\n{op.tail()}")
        finally:
            dev.down(say=lambda m: None)


def registry_processes(directory: Path) -> list[str]:
    """docker-registry processes serving a configuration under `directory`."""
    out = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if BINARY in line and str(directory) in line]


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = check()
        if seen:
            return seen
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {seen!r}")
