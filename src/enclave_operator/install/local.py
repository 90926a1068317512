"""The operator as a detached local process, for clusters whose nodes run no containers.

On the dev cluster it uses the dev cluster's operator kubeconfig and records its pid where
`enclavectl dev-cluster down` stops it; elsewhere its files live in a per-user temp directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.cluster import DevCluster
from enclave_operator.devcluster.registry import Registry
from enclave_operator.install.cluster import Cluster


def dev_cluster_of(cluster: Cluster) -> DevCluster | None:
    """The dev cluster (ENCLAVE_DEV_CLUSTER_DIR or the default one) if it is the target."""
    dev = DevCluster()
    state = dev.state()
    if state is None or state.server.rstrip("/") != cluster.server.rstrip("/"):
        return None
    return dev


@dataclass(frozen=True)
class LocalOperator:
    directory: Path
    kubeconfig: Path

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> LocalOperator:
        if dev := dev_cluster_of(cluster):
            return cls(dev.directory, dev.directory / "operator.kubeconfig")
        return cls(
            Path(tempfile.gettempdir()) / f"enclave-operator-{os.getuid()}", cluster.kubeconfig
        )

    @property
    def pid_file(self) -> Path:
        return self.directory / "operator.pid"

    @property
    def log(self) -> Path:
        return self.directory / "logs" / "operator.log"

    def pid(self) -> int | None:
        """The recorded operator's pid while that process is an operator and alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if b"operator\0run" not in cmdline or not processes.alive(pid):
            return None
        return pid

    def start(self, namespace: str) -> int:
        """Start it detached, so that it outlives enclavectl; ``died`` tells a crash later."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "OPERATOR_NAMESPACE": namespace,
            # its own port: another local operator or a test may hold the default 8080
            "METRICS_PORT": str(processes.free_port()),
        }
        if reg := Registry.load(self.directory):  # the dev cluster's registry: autoUpdate trusts it
            env.setdefault("REGISTRY_CA", reg.ca)
        argv = [sys.executable, "-m", "enclave_operator.cli", "operator", "run"]
        pid = processes.spawn(argv, self.log, env)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def died(self) -> str:
        """Why the operator is not running, with the end of its log, for an error message."""
        tail = processes.tail(self.log, 3).replace("\n", " | ")
        return f"the local operator is not running (log {self.log}): {tail}"

    def request_stop(self) -> int | None:
        """SIGTERM without waiting: kopf takes seconds to shut down, time better spent on the
        next steps; ``stop`` then waits (and kills after a grace period)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return pid

    def stop(self) -> int | None:
        """Stop it if it runs; the pid it had, or None."""
        pid = self.pid()
        if pid is not None:
            processes.stop(pid)
        self.pid_file.unlink(missing_ok=True)
        return pid
