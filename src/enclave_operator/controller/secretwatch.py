"""A watch of Secrets selected server-side, kept by namespace and name, beside kopf's.

kopf watches Secrets already, but one stream per resource, selected on Helm's release records
(``owner=helm``); a stream with selectors of its own needs its own small loop. It lists, then
follows the watch from the list's version; after a 410 it lists again at once, after any other
failure with backoff (1 s doubling to 30 s), so a Secret deleted during a gap leaves too. With
``namespaces`` (the operator's namespaced mode) there is one loop per namespace, and no
cluster-wide access is needed.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from kubernetes.aio import client as aclient
from kubernetes.aio import watch

from enclave_operator.kube import Kube

log = logging.getLogger("enclave_operator.controller")
WATCH_SECONDS = 300  # the API server ends a watch by then; it is resumed from its last version
Key = tuple[str, str]
T = TypeVar("T")


class SecretStream(Generic[T]):
    """What ``keep(secret)`` makes of each selected Secret (its plain JSON), by key; every key
    whose value comes, changes or goes is handed to ``changed(namespace, name)``."""

    def __init__(
        self,
        kube: Kube,
        what: str,
        selectors: Mapping[str, str],
        keep: Callable[[Mapping[str, Any]], T],
        changed: Callable[[str, str], None],
        namespaces: Sequence[str] = (),
    ) -> None:
        self._kube, self._core = kube, aclient.CoreV1Api(kube.api)
        self._what, self._selectors, self._keep, self._changed = what, selectors, keep, changed
        self.items: dict[Key, T] = {}
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._unlisted = set(self._scopes)
        self.listed = asyncio.Event()
        """Set once every namespace has been listed."""

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(scope) for scope in self._scopes))

    def _call(self, scope: str | None) -> tuple[Any, dict[str, Any]]:
        """The list call (every namespace, or one) and its arguments."""
        if scope is None:
            return self._core.list_secret_for_all_namespaces, dict(self._selectors)
        return self._core.list_namespaced_secret, {**self._selectors, "namespace": scope}

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
                if e.status == 410:  # too old a version: list again at once
                    continue
                log.warning(
                    "%s watch: %s %s; again in %.0fs", self._what, e.status, e.reason, delay
                )
            except Exception as e:  # a broken stream: list again after a pause
                log.warning("%s watch failed (%s); again in %.0fs", self._what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _list(self, scope: str | None) -> str:
        # the plain JSON, as watch events carry it: one `keep` for both
        where = f"/namespaces/{scope}" if scope else ""
        query = urllib.parse.urlencode(
            {
                {"field_selector": "fieldSelector", "label_selector": "labelSelector"}[k]: v
                for k, v in self._selectors.items()
            }
        )
        listing = await self._kube.get(f"/api/v1{where}/secrets?{query}")
        found = {_key(s): self._keep(s) for s in listing.get("items") or []}
        mine = {k: v for k, v in self.items.items() if scope is None or k[0] == scope}
        for key in mine:
            del self.items[key]
        self.items.update(found)
        self._unlisted.discard(scope)
        if not self._unlisted:
            self.listed.set()
        for key in sorted(set(mine) | set(found)):
            if mine.get(key) != found.get(key):
                self._changed(*key)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, scope: str | None, version: str) -> str:
        """Follow the stream until the API server ends it; the version to resume from."""
        call, kwargs = self._call(scope)
        stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            async for event in stream.stream(
                call,
                **kwargs,
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
        body = event["raw_object"]
        meta = body.get("metadata") or {}
        if event["type"] != "BOOKMARK":
            key = _key(body)
            if event["type"] == "DELETED":
                self.items.pop(key, None)
            else:
                self.items[key] = self._keep(body)
            self._changed(*key)
        version = meta.get("resourceVersion")
        return str(version) if version else None


def _key(secret: Mapping[str, Any]) -> Key:
    meta = secret.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))
