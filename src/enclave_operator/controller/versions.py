"""The version each running service pod reports, asked once per pod.

A CAS's and a LAS's ``status.version`` is what the running service says on ``/v1/version``,
not the tag of the image it was started from. When a ready pod appears (a pod event), its
address is asked once in the background; the answer is kept by pod uid and the resource is
reconciled again to show it. A pod that does not answer is asked again a few times with
growing pauses, then left without a version (as on kwok nodes, where no container runs). No
loop polls anything.

The CAS's certificate is verified with the ``ca.crt`` of its TLS Secret for the name
``cas-<name>.<ns>.svc``; a CAS without one serves a self-signed certificate, and then only this
version, which is no secret, is read without verification. LAS answers plain HTTP on its node.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

import aiohttp

from enclave_operator.figures.cluster import PodView
from enclave_operator.kube import ApiException, Kube

log = logging.getLogger("enclave_operator.versions")
RETRIES = (5.0, 15.0, 45.0)


class ServiceVersions:
    def __init__(self, kube: Kube, enqueue: Callable[[Any], None]) -> None:
        self.kube, self.enqueue = kube, enqueue
        self.reported: dict[str, str] = {}
        self._asked: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pods_of: dict[Hashable, set[str]] = {}  # the pod uids asked for each resource

    def cas(
        self, key: Hashable, release: str, namespace: str, port: int, pods: Sequence[PodView]
    ) -> dict[str, str]:
        """Versions known for these CAS pods, by uid; asks the ones not asked yet."""

        async def fetch(pod: PodView) -> str:
            context = await self._context(release, namespace)
            host = f"{release}.{namespace}.svc"
            return await _get_version(f"https://{_host(pod.ip)}:{port}", context, host)

        return self._known(key, pods, fetch)

    def las(self, key: Hashable, port: int, pods: Sequence[PodView]) -> dict[str, str]:
        """Versions known for these LAS pods (plain HTTP on the node, as workloads reach it)."""

        async def fetch(pod: PodView) -> str:
            return await _get_version(f"http://{_host(pod.ip)}:{port}", None, None)

        return self._known(key, pods, fetch)

    def _known(
        self,
        key: Hashable,
        pods: Sequence[PodView],
        fetch: Callable[[PodView], Awaitable[str]],
    ) -> dict[str, str]:
        mine = self._pods_of.setdefault(key, set())
        for pod in pods:
            if pod.ready and pod.ip and pod.uid and pod.uid not in self._asked:
                self._asked.add(pod.uid)
                mine.add(pod.uid)
                task = asyncio.create_task(self._ask(key, pod, fetch))
                self._tasks[pod.uid] = task
                task.add_done_callback(functools.partial(self._done, pod.uid))
        live = {p.uid for p in pods}
        for uid in mine - live - self._tasks.keys():  # only this resource's pods: others' stay
            self._drop(mine, uid)  # the pod is gone: forget it
        return {p.uid: self.reported[p.uid] for p in pods if p.uid in self.reported}

    def forget(self, key: Hashable) -> None:
        """The resource is gone: stop asking its pods and forget their versions."""
        mine = self._pods_of.pop(key, set())
        for uid in list(mine):
            if (task := self._tasks.get(uid)) is not None:
                task.cancel()
            self._drop(mine, uid)

    def _drop(self, mine: set[str], uid: str) -> None:
        mine.discard(uid)
        self._asked.discard(uid)
        self.reported.pop(uid, None)

    def _done(self, uid: str, _: asyncio.Task[None]) -> None:
        self._tasks.pop(uid, None)

    async def _ask(
        self, key: Hashable, pod: PodView, fetch: Callable[[PodView], Awaitable[str]]
    ) -> None:
        for pause in (0.0, *RETRIES):
            await asyncio.sleep(pause)
            try:
                version = await fetch(pod)
            except Exception as e:  # any failure: try again later, then give up
                log.debug("pod %s/%s at %s: %s", pod.namespace, pod.name, pod.ip, e)
                continue
            self.reported[pod.uid] = version
            self.enqueue(key)
            return
        log.info("pod %s/%s never reported a version", pod.namespace, pod.name)

    async def _context(self, release: str, namespace: str) -> ssl.SSLContext:
        try:
            secret = await self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{release}-tls")
            ca = base64.b64decode((secret.get("data") or {}).get("ca.crt", "")).decode()
        except ApiException as e:
            if e.status != 404:
                raise
            ca = ""
        if ca:
            return ssl.create_default_context(cadata=ca)
        return unverified_context()


def unverified_context() -> ssl.SSLContext:
    """For a self-signed CAS: TLS without verification, and so without the system's CA store,
    whose loading (create_default_context) costs tens of milliseconds of the event loop."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


async def _get_version(base: str, context: ssl.SSLContext | None, host: str | None) -> str:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(
            f"{base}/v1/version", ssl=context if context else True, server_hostname=host
        ) as response,
    ):
        response.raise_for_status()
        body = await response.json()
        return str(body["version"])
