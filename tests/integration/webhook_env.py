"""Helpers for the injection webhook's tests: the runner on a thread, pods, kwok nodes."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from enclave_operator.devcluster.nodes import SGXFlavour, node_manifest
from enclave_operator.webhook.requests import INJECTED
from enclave_operator.webhook.runner import WebhookRunner
from enclave_operator.webhook.settings import Settings
from tests.integration.waiting import wait_for

CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def settings_for(**changes: Any) -> Settings:
    """A configuration of its own per test, so that tests never see each other's."""
    return Settings(configuration=f"t-{uuid.uuid4().hex[:8]}.inject.enclave.dev", **changes)


@contextmanager
def running(runner: WebhookRunner) -> Iterator[WebhookRunner]:
    """The runner's ``run`` on a thread with its own loop, as the operator runs it; cancelled
    (which removes a local configuration) on the way out, and then it must have ended."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        tasks.append(loop.create_task(runner.run()))
        ready.set()
        try:
            loop.run_until_complete(tasks[0])
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        wait_for(lambda: runner.url, bool, 30, "the webhook serving")
        yield runner
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(30)
        assert not thread.is_alive(), "the runner went on after its stop"


def pod(
    name: str, *, labelled: bool = True, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    labels = {"enclave.dev/inject": "true"} if labelled else {"app": "plain"}
    containers = spec.pop("containers", [{"name": "app", "image": "busybox"}])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {"containers": containers, **spec},
    }


def injected(p: Any) -> dict[str, Any] | None:
    notes = p.metadata.annotations or {}
    return json.loads(notes[INJECTED]) if INJECTED in notes else None


def wait_registered(core: Any, namespace: str) -> None:
    """Until the API server's informer has the configuration: dry-run probes (the webhook
    is called for them too, and nothing is stored)."""
    body = pod("probe", annotations={"enclave.dev/plugin": "intel"})
    wait_for(
        lambda: injected(core.create_namespaced_pod(namespace, body, dry_run="All")),
        lambda s: s is not None,
        60,
        "the API server calling the webhook",
    )


@contextmanager
def kwok_nodes(core: Any, *flavours: SGXFlavour, taint: bool = True) -> Iterator[list[str]]:
    """Extra fake nodes of other plugins, tainted with their resource like SGX pools are."""
    names = []
    try:
        for i, flavour in enumerate(flavours):
            body = node_manifest(200 + i + uuid.uuid4().int % 500, flavour)
            if taint and flavour is not SGXFlavour.NONE:
                key = next(
                    iter(
                        body["status"]["capacity"].keys()
                        - {"cpu", "memory", "pods", "ephemeral-storage"}
                    )
                )
                body["spec"]["taints"] = [{"key": key, "effect": "NoSchedule"}]
            created = core.create_node(body)
            names.append(created.metadata.name)
            core.patch_node_status(created.metadata.name, {"status": body["status"]})
        yield names
    finally:
        for name in names:
            core.delete_node(name)


def scheduled_on(core: Any, namespace: str, name: str) -> str:
    return str(
        wait_for(
            lambda: core.read_namespaced_pod(name, namespace).spec.node_name,
            bool,
            60,
            f"pod {name} scheduled",
        )
    )
