"""Command lines and start-up order of the control plane's components."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.binaries import KWOK_STAGES, Toolset
from enclave_operator.devcluster.nodes import KWOK_SELECTOR, SGXFlavour, node_manifest, node_name
from enclave_operator.devcluster.pki import CertificateAuthority, KeyPair
from enclave_operator.devcluster.state import ComponentState

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
STARTUP_TIMEOUT = 60.0
DEFAULT_STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


@dataclass(frozen=True)
class Spec:
    name: str
    argv: list[str]
    health: str


def write_kubeconfig(path: Path, server: str, ca: Path, user: KeyPair) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "enclave-dev", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {
                "name": "enclave-dev",
                "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
            }
        ],
        "contexts": [
            {"name": "enclave-dev", "context": {"cluster": "enclave-dev", "user": "enclave-dev"}}
        ],
        "current-context": "enclave-dev",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


class ControlPlane:
    def __init__(
        self,
        directory: Path,
        tools: Toolset,
        ca: CertificateAuthority,
        sa: KeyPair,
        bind: str = "127.0.0.1",
        real_node: bool = False,
    ) -> None:
        """`bind`: loopback, or with a real node the host end of its veth (pods dial it)."""
        self.dir = directory
        self.bind = bind
        self.real_node = real_node
        self.tools = tools
        self.ca = ca
        self.sa = sa
        self.logs = directory / "logs"
        self.logs.mkdir(exist_ok=True)
        self.ports = {
            n: processes.free_port() for n in ("etcd", "peer", "api", "kcm", "sched", "kwok")
        }
        self.server = f"https://{bind}:{self.ports['api']}"

    def _kubeconfig(self, name: str, cn: str, org: str | None = None) -> Path:
        pair = self.ca.issue(name, cn, org=org, client=True)
        path = self.dir / ("kubeconfig" if name == "admin" else f"{name}.kubeconfig")
        write_kubeconfig(path, self.server, self.ca.pair.cert, pair)
        return path

    def _audit_policy(self) -> Path:
        """Who asked for what, without bodies: enough to count a client's requests by verb."""
        path = self.dir / "audit-policy.yaml"
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata"}],
        }
        path.write_text(yaml.safe_dump(policy))
        return path

    def specs(self) -> list[Spec]:
        p, d, bin_ = self.ports, self.dir, self.tools.path
        serving = self.ca.issue(
            "apiserver",
            "kube-apiserver",
            hosts=(
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.96.0.1",
                self.bind,
            ),
        )
        admin = self._kubeconfig("admin", "enclave-dev-admin", org="system:masters")
        kcm = self._kubeconfig("controller-manager", "system:kube-controller-manager")
        sched = self._kubeconfig("scheduler", "system:kube-scheduler")
        kwok = self._kubeconfig("kwok", "kwok-controller", org="system:masters")
        # the operator's own identity, so that audit logs and metrics can tell its requests apart
        self._kubeconfig("operator", "enclave-operator", org="system:masters")
        del admin
        peer = f"http://127.0.0.1:{p['peer']}"
        etcd = f"http://127.0.0.1:{p['etcd']}"
        return [
            Spec(
                "etcd",
                [
                    str(bin_("etcd")),
                    "--name=dev",
                    f"--data-dir={d / 'etcd'}",
                    f"--listen-client-urls={etcd}",
                    f"--advertise-client-urls={etcd}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=dev={peer}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                f"{etcd}/health",
            ),
            Spec(
                "kube-apiserver",
                [
                    str(bin_("kube-apiserver")),
                    f"--etcd-servers={etcd}",
                    f"--bind-address={self.bind}",
                    f"--advertise-address={self.bind}",
                    f"--secure-port={p['api']}",
                    f"--cert-dir={d / 'pki'}",
                    f"--tls-cert-file={serving.cert}",
                    f"--tls-private-key-file={serving.key}",
                    f"--client-ca-file={self.ca.pair.cert}",
                    f"--service-account-issuer={ISSUER}",
                    f"--service-account-key-file={self.sa.cert}",
                    f"--service-account-signing-key-file={self.sa.key}",
                    "--authorization-mode=Node,RBAC",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--allow-privileged=true",
                    *self._node_args(),
                    "--profiling=false",
                    "--v=0",
                    f"--audit-policy-file={self._audit_policy()}",
                    f"--audit-log-path={self.logs / 'audit.log'}",
                    "--audit-log-maxsize=100",
                    "--audit-log-maxbackup=1",
                ],
                f"{self.server}/readyz",
            ),
            Spec(
                "kube-controller-manager",
                [
                    str(bin_("kube-controller-manager")),
                    f"--kubeconfig={kcm}",
                    f"--authentication-kubeconfig={kcm}",
                    f"--authorization-kubeconfig={kcm}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={p['kcm']}",
                    f"--cert-dir={d / 'kcm'}",
                    "--leader-elect=false",
                    "--controllers=*",
                    "--use-service-account-credentials=true",
                    # the defaults (20/s, burst 30 per controller) made the Deployment and
                    # ReplicaSet controllers the slowest part of a hundred installs at once
                    "--kube-api-qps=100",
                    "--kube-api-burst=200",
                    f"--service-account-private-key-file={self.sa.key}",
                    f"--root-ca-file={self.ca.pair.cert}",
                    f"--cluster-signing-cert-file={self.ca.pair.cert}",
                    f"--cluster-signing-key-file={self.ca.pair.key}",
                    "--cluster-name=enclave-dev",
                    # dynamic provisioning for PVCs without a storage backend: dev only
                    "--enable-hostpath-provisioner=true",
                    "--profiling=false",
                ],
                f"https://127.0.0.1:{p['kcm']}/healthz",
            ),
            Spec(
                "kube-scheduler",
                [
                    str(bin_("kube-scheduler")),
                    f"--kubeconfig={sched}",
                    f"--authentication-kubeconfig={sched}",
                    f"--authorization-kubeconfig={sched}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={p['sched']}",
                    f"--cert-dir={d / 'scheduler'}",
                    "--leader-elect=false",
                    "--profiling=false",
                ],
                f"https://127.0.0.1:{p['sched']}/healthz",
            ),
            Spec(
                "kwok",
                [
                    str(bin_("kwok")),
                    f"--kubeconfig={kwok}",
                    f"--config={self.tools.path(KWOK_STAGES)}",
                    "--manage-all-nodes=false",
                    f"--manage-nodes-with-annotation-selector={KWOK_SELECTOR}",
                    f"--cidr={POD_CIDR}",
                    "--node-ip=127.10.255.1",
                    f"--server-address=127.0.0.1:{p['kwok']}",
                    "--node-lease-duration-seconds=40",
                ],
                f"http://127.0.0.1:{p['kwok']}/healthz",
            ),
        ]

    def _node_args(self) -> list[str]:
        """Without a real node nothing dials the `kubernetes` Service or a kubelet."""
        if not self.real_node:
            return ["--endpoint-reconciler-type=none"]
        client = self.ca.issue(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            org="system:masters",
            client=True,
        )
        return [
            f"--kubelet-client-certificate={client.cert}",
            f"--kubelet-client-key={client.key}",
            "--kubelet-preferred-address-types=InternalIP",
            # webhooks and aggregated APIs reach pod IPs directly: the host has no kube-proxy
            "--enable-aggregator-routing=true",
        ]

    def start(self, say: Callable[[str], None]) -> Iterator[ComponentState]:
        """Start each component and wait for its health endpoint before the next one."""
        for spec in self.specs():
            t0 = time.monotonic()
            log = self.logs / f"{spec.name}.log"
            pid = processes.spawn(spec.argv, log)
            yield ComponentState(spec.name, pid, spec.argv[0], spec.health)
            processes.wait_healthy(
                spec.name,
                pid,
                spec.health,
                log,
                STARTUP_TIMEOUT,
                cafile=self.ca.pair.cert if spec.name == "kube-apiserver" else None,
            )
            say(f"{spec.name} ready in {time.monotonic() - t0:.1f}s")

    def add_nodes(self, count: int, flavour: SGXFlavour, say: Callable[[str], None]) -> None:
        """Create the default StorageClass and the fake nodes; wait for kwok to mark them Ready."""
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(str(self.dir / "kubeconfig")))  # type: ignore[no-untyped-call]
        client.StorageV1Api(api.api_client).create_storage_class(
            client.V1StorageClass.model_validate(DEFAULT_STORAGE_CLASS)
        )
        for i in range(count):
            api.create_node(client.V1Node.model_validate(node_manifest(i, flavour)))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        ready = 0
        while time.monotonic() < deadline:
            nodes = api.list_node(label_selector="type=kwok").items
            ready = sum(1 for n in nodes if _is_ready(n))
            if ready >= count:
                say(f"{count} fake nodes Ready ({node_name(0)} ...)")
                return
            time.sleep(0.2)
        raise processes.StartupError(f"only {ready}/{count} fake nodes Ready after 60s")


def _is_ready(node: Any) -> bool:
    conditions = node.status.conditions if node.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])
