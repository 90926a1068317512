"""Starting the operator: kopf for watches and caches, our workers for reconciling."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import kopf

from enclave_operator.api.kinds import CAS
from enclave_operator.controller import logs
from enclave_operator.controller.caches import Caches, CRKey
from enclave_operator.controller.metrics import OperatorMetrics
from enclave_operator.controller.registry import build_registry, label_selectors
from enclave_operator.controller.worker import Controller
from enclave_operator.helm.runner import HelmRunner
from enclave_operator.kube import Kube

FIGURES_DEBOUNCE = 0.5  # seconds: node and pod bursts are folded into one recomputation


class Extension(Protocol):
    """Another controller in the same process (the policy controller): it registers its own
    watches and runs its own workers beside ours."""

    def register(self, registry: kopf.OperatorRegistry) -> None: ...

    async def run(self) -> None: ...


CASExists = Callable[[str, str], bool]
ExtensionFactory = Callable[[Kube, str, CASExists], Extension]


def helm_binary() -> Path:
    """`helm` on PATH (the image), else the one the dev tooling built."""
    if found := shutil.which("helm"):
        return Path(found)
    from enclave_operator.devcluster.binaries import toolset

    return toolset().path("helm")


async def operate(
    operator_namespace: str,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    workers: int = 4,
    metrics_port: int = 8080,
    extensions: Sequence[ExtensionFactory] = (),
) -> None:
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads it
    kube = await Kube.connect(kubeconfig)
    helm = HelmRunner(helm_binary(), kubeconfig)
    caches = Caches()
    metrics = OperatorMetrics()
    if metrics_port:
        metrics.serve(metrics_port)
    controller = Controller(kube, helm, caches, operator_namespace, metrics)
    registry = build_registry(
        caches,
        controller.queue.add,
        operator_namespace,
        enqueue_soon=lambda key: controller.queue.add_after(key, FIGURES_DEBOUNCE),
    )

    def cas_exists(namespace: str, name: str) -> bool:
        return caches.ready and caches.cr(CRKey(CAS.plural, namespace, name)) is not None

    extras = [make(kube, operator_namespace, cas_exists) for make in extensions]
    for extra in extras:
        extra.register(registry)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    settings = kopf.OperatorSettings()
    label_selectors(settings)
    settings.posting.enabled = False  # our Events say what happened; kopf's would be noise
    settings.watching.server_timeout = 600
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    workers_task = asyncio.create_task(controller.run(workers))
    extra_tasks = [asyncio.create_task(extra.run()) for extra in extras]
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else [],
        )
    finally:
        workers_task.cancel()
        for task in extra_tasks:
            task.cancel()
        await kube.close()


def run(
    operator_namespace: str,
    namespace: str | None,
    kubeconfig: str | None,
    verbose: bool,
    metrics_port: int = 8080,
    extensions: Sequence[ExtensionFactory] = (),
    log_format: str = "text",
) -> None:
    logs.configure(log_format, verbose)
    if not verbose:
        logging.getLogger("kopf").setLevel(logging.WARNING)
    asyncio.run(
        operate(
            operator_namespace,
            namespace,
            kubeconfig,
            metrics_port=metrics_port,
            extensions=extensions,
        )
    )
