"""A dev cluster of a test module's own, and the operator as a process on it, for tests that
must not share the session's cluster (its operator would act on their resources too) or that
disturb it (restarting kube-apiserver, replacing the ClusterRole)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.processes import free_port
from tests.integration.conftest import ROOT, Cluster

NS = "enclave-system"


@contextlib.contextmanager
def isolated_cluster(
    tmp_path_factory: pytest.TempPathFactory, prefix: str, nodes: int = 2
) -> Iterator[tuple[DevCluster, Cluster]]:
    """kwok nodes only, the CRDs Established and the operator's namespace created."""
    tools = ensure_built()
    dev = DevCluster(tmp_path_factory.mktemp(prefix) / "dev")
    dev.up(nodes=nodes, say=lambda m: None)
    try:
        cluster = Cluster(str(dev.kubeconfig), tools.directory)
        crds = str(ROOT / "config" / "crd")
        cluster.kubectl("apply", "--server-side", "-f", crds)
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
        cluster.kubectl("create", "namespace", NS)
        yield dev, cluster
    finally:
        dev.down(say=lambda m: None)


def start_operator(kubeconfig: str | Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`enclavectl operator run` in a process group of its own (a SIGKILL of the group takes
    its helm children too); METRICS_PORT is a free port unless given."""
    full = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "OPERATOR_NAMESPACE": NS,
        "METRICS_PORT": str(free_port()),
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "enclave_operator.cli", "operator", "run"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_operator(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL of the group if it does not stop in time."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def api_up(api: client.ApiClient) -> bool:
    """Whether kube-apiserver answers (after a restart of it)."""
    try:
        client.VersionApi(api).get_code()
        return True
    except Exception:
        return False


def probe(port: int, path: str) -> tuple[int, str]:
    """An operator's metrics server's answer on ``path`` (/healthz, /metrics): status and body;
    0 and the error when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)
