"""The peer (operator-sdk's helm-operator) and ours, each as a local process on the same dev
cluster: building the peer from its Go module, its CRD and watches.yaml for the same CAS chart,
its own ServiceAccount identity (so the audit log tells its requests apart), and the RSS of each
process tree (the operator and its helm children)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from benchmarks.harness import OPERATOR_NAMESPACE, ROOT, run
from enclave_operator.api.kinds import CAS
from enclave_operator.charts import chart_path
from enclave_operator.devcluster.binaries import toolset

PEER_VERSION = "v1.42.3"
PEER_GROUP, PEER_VERSION_API, PEER_PLURAL, PEER_KIND = "peer.enclave.dev", "v1", "cas", "CAS"
PEER_NAMESPACE, PEER_ACCOUNT = "peer-system", "helm-operator"
PEER_USER = f"system:serviceaccount:{PEER_NAMESPACE}:{PEER_ACCOUNT}"
OUR_USER = "enclave-operator"
OUR_WORKERS = 4  # controller.run.operate's default
PAGE = os.sysconf("SC_PAGE_SIZE")


def peer_binary() -> Path:
    """helm-operator built from tools/helm-operator (a wrapper module: `go install …@version`
    fails on the proxy's version list) into the cache outside the clone; built once."""
    cache = Path(os.environ.get("ENCLAVE_CACHE", Path.home() / ".cache" / "enclave-operator"))
    out = cache / "bin" / f"helm-operator-{PEER_VERSION}" / "helm-operator"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"building helm-operator {PEER_VERSION} (a few minutes)…", flush=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}
    tmp = out.with_suffix(".tmp")
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp),
         "github.com/operator-framework/operator-sdk/cmd/helm-operator"],
        cwd=ROOT / "tools" / "helm-operator", env=env, check=True, timeout=1800,
    )  # fmt: skip
    tmp.rename(out)
    return out


def peer_crd() -> dict[str, Any]:
    """A CAS kind of the peer's own group, spec and status free-form, as helm-operator expects."""
    free = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PEER_PLURAL}.{PEER_GROUP}"},
        "spec": {
            "group": PEER_GROUP,
            "names": {"kind": PEER_KIND, "plural": PEER_PLURAL, "singular": "cas"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": PEER_VERSION_API,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": free, "status": free},
                        }
                    },
                }
            ],
        },
    }


@dataclass
class Cluster:
    """What both operators need from the dev cluster: kubectl, an API client, the directory."""

    directory: Path
    api: client.ApiClient

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    def kubectl(self, *args: str, input: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return run(str(toolset().path("kubectl")), *args, env=env, input=input)

    def helm_env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


def prepare(cluster: Cluster) -> None:
    """Both CRDs, our operator's namespace, the peer's namespace, account and admin binding
    (ours runs as system:masters: the same power for both)."""
    crds = str(ROOT / "config" / "crd")
    cluster.kubectl("apply", "--server-side", "-f", crds)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(peer_crd()))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
    objects = [
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
          for ns in (OPERATOR_NAMESPACE, PEER_NAMESPACE)),
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": PEER_ACCOUNT, "namespace": PEER_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "peer-admin"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": PEER_ACCOUNT,
                       "namespace": PEER_NAMESPACE}]},
    ]  # fmt: skip
    # applied, not created: `--cluster-dir` runs again on a cluster that has them
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objects))


def _peer_kubeconfig(cluster: Cluster) -> Path:
    token = cluster.kubectl(
        "create", "token", PEER_ACCOUNT, "-n", PEER_NAMESPACE, "--duration=24h"
    ).strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"][0]["user"] = {"token": token}
    path = cluster.directory / "peer.kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    path.chmod(0o600)
    return path


@dataclass
class Operator:
    """One running operator process; `peak_tree_rss` is sampled over it and its children."""

    name: str
    proc: subprocess.Popen[bytes]
    concurrency: int
    peak_tree_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_tree_rss = max(self.peak_tree_rss, tree_rss(self.proc.pid))

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def reset_peak(self) -> None:
        self.peak_tree_rss = tree_rss(self.proc.pid)

    def hwm_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return -1.0


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and every descendant (the operator's helm processes)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def _start(name: str, argv: list[str], env: dict[str, str], log: Path, conc: int) -> Operator:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    op = Operator(name, proc, conc)
    threading.Thread(target=op.sample, daemon=True).start()
    return op


def start_ours(cluster: Cluster) -> Operator:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.directory / "operator.kubeconfig"),
        "OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        "METRICS_PORT": "0",
    }
    argv = [sys.executable, "-m", "enclave_operator.cli", "operator", "run"]
    return _start("ours", argv, env, cluster.directory / "logs" / "operator.log", OUR_WORKERS)


def start_peer(cluster: Cluster, concurrency: int | None) -> Operator:
    """helm-operator with its defaults (reconcile period 1 min, NumCPU reconciles) unless
    `concurrency` is given; the chart is the very directory our operator installs."""
    watches = cluster.directory / "watches.yaml"
    watches.write_text(
        yaml.safe_dump(
            [
                {
                    "group": PEER_GROUP,
                    "version": PEER_VERSION_API,
                    "kind": PEER_KIND,
                    "chart": str(chart_path(CAS)),
                }
            ]
        )
    )
    argv = [
        str(peer_binary()), "run", f"--watches-file={watches}",
        "--metrics-bind-address=0", "--health-probe-bind-address=0",
    ]  # fmt: skip
    if concurrency:
        argv.append(f"--max-concurrent-reconciles={concurrency}")
    env = {**os.environ, "KUBECONFIG": str(_peer_kubeconfig(cluster))}
    conc = concurrency or os.cpu_count() or 1
    return _start("peer", argv, env, cluster.directory / "logs" / "peer.log", conc)


def wait_gone(list_names: Any, timeout: float) -> bool:
    """Poll a cheap list until empty: cleanup between phases, not part of any measure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not list_names():
            return True
        time.sleep(1)
    return False
