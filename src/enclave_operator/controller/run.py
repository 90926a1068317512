"""Starting the operator: kopf for watches and caches, our workers for reconciling."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import kopf

from enclave_operator import logs
from enclave_operator.api.kinds import CAS
from enclave_operator.controller import gaps, probes
from enclave_operator.controller.caches import Caches, CRKey
from enclave_operator.controller.clusterwatch import ClusterWatch
from enclave_operator.controller.gaps import RelistSignal
from enclave_operator.controller.kopf_tuning import tune
from enclave_operator.controller.leader import LeaderElector
from enclave_operator.controller.liveness import SYNC_WITHIN, Liveness
from enclave_operator.controller.metrics import OperatorMetrics
from enclave_operator.controller.registry import build_registry, label_selectors
from enclave_operator.controller.worker import Controller
from enclave_operator.helm.runner import HelmRunner
from enclave_operator.kube import Kube
from enclave_operator.kube import login as kube_login

FIGURES_DEBOUNCE = 0.5  # seconds: node and pod bursts are folded into one recomputation


class Extension(Protocol):
    """Another controller in the same process (the policy controller): it registers its own
    watches and runs its own workers beside ours."""

    def register(self, registry: kopf.OperatorRegistry) -> None: ...

    async def run(self) -> None: ...


CASExists = Callable[[str, str], bool]
ExtensionFactory = Callable[[Kube, str, CASExists], Extension]


def helm_binary(name: str = "helm") -> Path:
    """`helm` (or `helm-server`) on PATH (the image), else the one the dev tooling built."""
    if found := shutil.which(name):
        return Path(found)
    from enclave_operator.devcluster.binaries import toolset

    return toolset().path(name)


class LostLeadership(RuntimeError):
    """The lease could not be renewed in time: stop acting, let the pod restart."""


async def operate(
    operator_namespace: str,
    namespaces: Sequence[str] = (),
    kubeconfig: str | None = None,
    workers: int = 4,
    metrics_port: int = 8080,
    extensions: Sequence[ExtensionFactory] = (),
    leader_election: bool = False,
    identity: str | None = None,
    sync_within: float = SYNC_WITHIN,
) -> None:
    kube = await Kube.connect(kubeconfig)  # and kopf's watches log in as it does
    helm = HelmRunner(helm_binary("helm-server"), kubeconfig)
    caches = Caches()
    metrics = OperatorMetrics()
    liveness = Liveness()
    if metrics_port:
        probes.serve(
            metrics.registry,
            metrics_port,
            {"/healthz": liveness.alive, "/readyz": liveness.readiness},
        )
    liveness.watch("heartbeat", asyncio.create_task(liveness.beat()))
    watching = watched(namespaces, operator_namespace)
    controller = Controller(kube, helm, caches, operator_namespace, metrics, watching)
    sweeper = gaps.for_operator(kube, caches, controller.enqueue)
    RelistSignal.install(sweeper.relisted)
    registry = build_registry(caches, controller.enqueue, operator_namespace)
    cluster = ClusterWatch(
        kube, caches, lambda key: controller.queue.add_after(key, FIGURES_DEBOUNCE), watching
    )

    def cas_exists(namespace: str, name: str) -> bool:
        return caches.ready and caches.cr(CRKey(CAS.plural, namespace, name)) is not None

    extras = [make(kube, operator_namespace, cas_exists) for make in extensions]
    for extra in extras:
        extra.register(registry)
    tasks: list[asyncio.Task[None]] = []
    elector = (
        LeaderElector(kube, operator_namespace, identity or default_identity())
        if leader_election
        else None
    )
    try:
        for extra in extras:  # the webhook answers on every replica, leading or not
            if every_replica(extra):
                tasks.append(asyncio.create_task(extra.run()))
                liveness.watch(type(extra).__name__, tasks[-1], may_return=True)
        liveness.ready = True
        if elector is not None:
            liveness.role = "standby"
            await elector.acquire()
        liveness.role = "leader" if elector is not None else "running"
        tasks.append(asyncio.create_task(cluster.run()))
        liveness.watch("nodes and pods", tasks[-1])
        liveness.expect("nodes and pods listed", caches.views.listed.is_set, sync_within)
        tasks.append(asyncio.create_task(controller.run(workers)))
        liveness.watch("workers", tasks[-1])
        for extra in extras:
            if not every_replica(extra):
                tasks.append(asyncio.create_task(extra.run()))
                liveness.watch(type(extra).__name__, tasks[-1], may_return=True)
        await _kopf(registry, watching, elector)
    finally:
        for task in tasks:
            task.cancel()
        if elector is not None:
            await elector.release()
        await kube.close()


async def _kopf(
    registry: kopf.OperatorRegistry, namespaces: list[str], elector: LeaderElector | None
) -> None:
    """kopf's watches until it stops, or until the lease is lost (then LostLeadership)."""

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kube_login()

    settings = kopf.OperatorSettings()
    label_selectors(settings)
    tune(settings, registry)
    settings.posting.enabled = False  # our Events say what happened; kopf's would be noise
    settings.watching.server_timeout = 600
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    watching = kopf.operator(
        registry=registry,
        settings=settings,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
    )
    if elector is None:
        await watching
        return
    kopf_task = asyncio.create_task(watching)
    lost = asyncio.create_task(elector.hold())
    try:
        await asyncio.wait({kopf_task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (kopf_task, lost):
            task.cancel()
    if lost.done() and not lost.cancelled():
        raise LostLeadership(f"lost lease {elector.path}")
    await asyncio.gather(kopf_task, return_exceptions=True)


def watched(namespaces: Sequence[str], operator_namespace: str) -> list[str]:
    """The namespaces whose namespaced objects kopf watches; empty: all (cluster-wide). With a
    list, the operator's own namespace is always among them: LAS and SGXPlugin releases live
    there by default. Cluster-scoped kinds (LAS, SGXPlugin, nodes) are watched either way."""
    return sorted({*namespaces, operator_namespace}) if namespaces else []


def every_replica(extension: Extension) -> bool:
    """Extensions marked ``every_replica`` run on standby replicas too (the webhook)."""
    return bool(getattr(extension, "every_replica", False))


def default_identity() -> str:
    """The pod's name (HOSTNAME in a pod) and a random suffix, unique per process."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


def run(
    operator_namespace: str,
    namespaces: Sequence[str],
    kubeconfig: str | None,
    verbose: bool,
    metrics_port: int = 8080,
    extensions: Sequence[ExtensionFactory] = (),
    log_format: str = "text",
    leader_election: bool = False,
    sync_within: float = SYNC_WITHIN,
) -> None:
    logs.configure(log_format, verbose)
    if not verbose:
        logging.getLogger("kopf").setLevel(logging.WARNING)
    try:
        asyncio.run(
            operate(
                operator_namespace,
                namespaces,
                kubeconfig,
                metrics_port=metrics_port,
                extensions=extensions,
                leader_election=leader_election,
                sync_within=sync_within,
            )
        )
    except LostLeadership as e:
        logging.getLogger(__name__).error("stopping: %s", e)
        sys.exit(3)
