"""Registry-credential Secrets from a watch: which exist, by namespace and name.

A pass looks a CR's ``imagePullSecrets`` up here instead of reading each Secret on every pass,
and a pull secret created or deleted later re-queues the CRs that name it, like every other
input. The stream is selected server-side on the Secret type, so the cluster's other Secrets
never reach it; only names are kept, never the credentials.

kopf watches Secrets already, but one stream per resource, selected on Helm's release records
(``owner=helm``); this second stream has a selector of its own, hence its own small loop.
After a 410 or a broken stream it lists again, so a Secret deleted during the gap leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes.aio import client as aclient
from kubernetes.aio import watch

from enclave_operator.kube import Kube

log = logging.getLogger("enclave_operator.controller")
DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"
SELECTOR = f"type={DOCKER_CONFIG}"
WATCH_SECONDS = 300  # the API server ends a watch by then; it is resumed from its last version


class PullSecrets:
    def __init__(
        self, kube: Kube, changed: Callable[[str, str], None], namespaces: Sequence[str] = ()
    ) -> None:
        """``changed(namespace, name)``: a pull secret appeared or left. ``namespaces``: only
        these (the operator's namespaced mode, without cluster-wide Secret access)."""
        self._core = aclient.CoreV1Api(kube.api)
        self._changed = changed
        self._names: set[tuple[str, str]] = set()
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._unlisted = set(self._scopes)
        self.listed = asyncio.Event()

    async def choose(
        self, spec: Mapping[str, Any], namespace: str
    ) -> tuple[str | None, tuple[str, ...]]:
        """The first of ``spec``'s imagePullSecrets that exists with the docker-config type, and
        notes for the others. From the watch, never a read per pass; before its first list,
        waits."""
        await self.listed.wait()
        chosen, ignored = None, []
        for entry in spec.get("imagePullSecrets") or []:
            name = entry.get("name", "")
            if chosen is not None:
                ignored.append(f"{name} (only the first valid one is used)")
            elif self.exists(namespace, name):
                chosen = name
            else:
                ignored.append(f"{name} (no Secret of type {DOCKER_CONFIG} by that name)")
        notes = [f"imagePullSecrets ignored: {', '.join(ignored)}"] if ignored else []
        return chosen, tuple(notes)

    def exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret of the docker-config type has this name (after the first list)."""
        return (namespace, name) in self._names

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(scope) for scope in self._scopes))

    def _calls(self, scope: str | None) -> tuple[Any, dict[str, str]]:
        """The list call (every namespace, or one) and its namespace argument."""
        if scope is None:
            return self._core.list_secret_for_all_namespaces, {}
        return self._core.list_namespaced_secret, {"namespace": scope}

    async def _follow(self, scope: str | None) -> None:
        delay = 1.0
        while True:
            try:
                version = await self._list(scope)
                delay = 1.0
                while True:
                    version = await self._watch(scope, version)
            except asyncio.CancelledError:
                raise
            except aclient.ApiException as e:
                if e.status != 410:  # 410: the version is too old; list again at once
                    log.warning(
                        "pull secret watch: %s %s; again in %.0fs", e.status, e.reason, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            except Exception as e:  # a broken stream: list again after a pause
                log.warning("pull secret watch failed (%s); again in %.0fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _list(self, scope: str | None) -> str:
        call, where = self._calls(scope)
        listing: Any = await call(field_selector=SELECTOR, **where)
        names = {(str(s.metadata.namespace), str(s.metadata.name)) for s in listing.items}
        mine = {n for n in self._names if scope is None or n[0] == scope}
        moved = names ^ mine if scope not in self._unlisted else set()
        self._names = (self._names - mine) | names
        self._unlisted.discard(scope)
        if not self._unlisted:
            self.listed.set()
        for namespace, name in sorted(moved):
            self._changed(namespace, name)
        return str(listing.metadata.resource_version)

    async def _watch(self, scope: str | None, version: str) -> str:
        """Follow the stream until the API server ends it; the version to resume from."""
        stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
        call, where = self._calls(scope)
        try:
            async for event in stream.stream(
                call,
                **where,
                field_selector=SELECTOR,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
            ):
                version = self._apply(event) or version
        finally:
            stream.stop()
        return version

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        """One event (its plain JSON: bookmarks are never made into a model)."""
        kind, meta = event["type"], event["raw_object"].get("metadata") or {}
        if kind != "BOOKMARK":
            key = (str(meta.get("namespace")), str(meta.get("name")))
            if kind == "DELETED":
                self._names.discard(key)
            else:
                self._names.add(key)
            self._changed(*key)
        version = meta.get("resourceVersion")
        return str(version) if version else None
