"""Fixtures for tests against the real control plane (the dev cluster or KUBECONFIG's)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.devcluster.cluster import DevCluster
from tests.integration.install_env import Env
from tests.integration.operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@dataclass
class Cluster:
    kubeconfig: str
    bin_dir: Path

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin_dir / tool), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECONFIG": self.kubeconfig},
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, check=check, input=input, timeout=timeout)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """KUBECONFIG's cluster when set, else a dev cluster of our own for this run."""
    tools = ensure_built()
    if kc := os.environ.get("KUBECONFIG"):
        yield Cluster(kc, tools.directory)
        return
    dev = DevCluster(tmp_path_factory.mktemp("cluster") / "dev")
    dev.up(nodes=3, say=lambda m: print(m))
    try:
        yield Cluster(str(dev.kubeconfig), tools.directory)
    finally:
        dev.down(say=lambda m: None)


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
    return api


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    """The project's CRDs applied and Established."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "config" / "crd"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "config" / "crd")
    )


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace with its default ServiceAccount (pods need it), deleted afterwards."""
    core = client.CoreV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except client.ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield name
    core.delete_namespace(name)


OPERATOR_NAMESPACE = "enclave-system"


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator running as its own process against the cluster, for the whole session."""
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    proc = OperatorProcess(
        cluster.kubeconfig, OPERATOR_NAMESPACE, tmp_path_factory.mktemp("operator") / "log"
    )
    proc.start()
    yield proc
    proc.stop()
    print(f"operator log tail:\n{proc.tail()}")


@pytest.fixture(scope="session")
def own() -> Iterator[Env]:
    """A dev cluster of the install tests' own: they install and delete cluster-wide CRDs,
    which the session's operator and the other tests rely on."""
    tools = ensure_built()
    with tempfile.TemporaryDirectory(prefix="enclave-install-") as tmp:
        dev = DevCluster(Path(tmp) / "dev")
        dev.up(nodes=3, say=lambda m: None)
        try:
            yield Env(dev, Cluster(str(dev.kubeconfig), tools.directory))
        finally:
            dev.down(say=lambda m: None)
