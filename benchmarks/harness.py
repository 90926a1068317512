"""What every benchmark starts from: its own dev cluster with the CRDs and a running operator."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from enclave_operator.devcluster.binaries import toolset
from enclave_operator.devcluster.cluster import DevCluster

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_NAMESPACE = "enclave-system"


@dataclass
class Harness:
    cluster: DevCluster
    operator: subprocess.Popen[bytes]

    def kubectl(self, *args: str, input: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        return run(str(toolset().path("kubectl")), *args, env=env, input=input)

    def helm(self, *args: str, input: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        return run(str(toolset().path("helm")), *args, env=env, input=input)


def run(*argv: str, env: dict[str, str], input: str | None = None) -> str:
    out = subprocess.run(
        argv, env=env, input=input, text=True, capture_output=True, check=False, timeout=300
    )
    if out.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr}")
    return out.stdout


@contextlib.contextmanager
def operated_cluster(nodes: int) -> Iterator[Harness]:
    """The operator runs as its own process with its own identity (operator.kubeconfig), so the
    audit log can tell its requests apart; it does not serve metrics (no port to collide)."""
    scratch = Path(tempfile.mkdtemp(prefix="enclave-bench-"))
    cluster = DevCluster(scratch / "cluster")
    cluster.up(nodes=nodes, say=lambda m: None)
    operator = None
    try:
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        kubectl = str(toolset().path("kubectl"))
        crds = str(ROOT / "config" / "crd")
        run(kubectl, "apply", "--server-side", "-f", crds, env=env)
        run(kubectl, "wait", "--for=condition=Established", "-f", crds, env=env)
        run(kubectl, "create", "namespace", OPERATOR_NAMESPACE, env=env)
        op_env = {
            **env,
            "KUBECONFIG": str(cluster.directory / "operator.kubeconfig"),
            "OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
            "METRICS_PORT": "0",
        }
        with (cluster.directory / "logs" / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "enclave_operator.cli", "operator", "run"],
                env=op_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield Harness(cluster, operator)
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        cluster.down(say=lambda m: None)
        scratch.rmdir()
