"""The version each running service pod reports, asked once per pod.

A CAS's ``status.version`` is what the running service says on ``/v1/version``, not the tag of
the image it was started from. When a ready CAS pod appears (a pod event), its address is asked
once in the background; the answer is kept by pod uid and the CAS is reconciled again to show
it. A pod that does not answer is asked again a few times with growing pauses, then left
without a version (as on kwok nodes, where no container runs). No loop polls anything.

The CAS's certificate is verified with the ``ca.crt`` of its TLS Secret for the name
``cas-<name>.<ns>.svc``; a CAS without one serves a self-signed certificate, and then only this
version, which is no secret, is read without verification.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import ssl
from collections.abc import Callable, Hashable, Sequence
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

    def cas(
        self, key: Hashable, release: str, namespace: str, port: int, pods: Sequence[PodView]
    ) -> dict[str, str]:
        """Versions known for these pods, by uid; asks the ones not asked yet."""
        for pod in pods:
            if pod.ready and pod.ip and pod.uid and pod.uid not in self._asked:
                self._asked.add(pod.uid)
                task = asyncio.create_task(self._ask_cas(key, release, namespace, port, pod))
                self._tasks[pod.uid] = task
                task.add_done_callback(functools.partial(self._done, pod.uid))
        live = {p.uid for p in pods}
        for uid in self._asked - live - self._tasks.keys():
            self._asked.discard(uid)  # the pod is gone: forget it
            self.reported.pop(uid, None)
        return {p.uid: self.reported[p.uid] for p in pods if p.uid in self.reported}

    def _done(self, uid: str, _: asyncio.Task[None]) -> None:
        self._tasks.pop(uid, None)

    async def _ask_cas(
        self, key: Hashable, release: str, namespace: str, port: int, pod: PodView
    ) -> None:
        host = f"{release}.{namespace}.svc"
        for pause in (0.0, *RETRIES):
            await asyncio.sleep(pause)
            try:
                context = await self._context(release, namespace)
                version = await _get_version(pod.ip, port, host, context)
            except Exception as e:  # any failure: try again later, then give up
                log.debug("CAS %s/%s at %s:%d: %s", namespace, pod.name, pod.ip, port, e)
                continue
            self.reported[pod.uid] = version
            self.enqueue(key)
            return
        log.info("CAS pod %s/%s never reported a version", namespace, pod.name)

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
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context


async def _get_version(ip: str, port: int, host: str, context: ssl.SSLContext) -> str:
    address = f"[{ip}]" if ":" in ip else ip
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(
            f"https://{address}:{port}/v1/version", ssl=context, server_hostname=host
        ) as response,
    ):
        response.raise_for_status()
        body = await response.json()
        return str(body["version"])
