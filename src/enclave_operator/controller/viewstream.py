"""A lean list+watch of a built-in kind that keeps a small view per object, like client-go's
informers with a transform.

kopf runs a worker task and keeps state for every object it watches; among 10,000 pods that are
not ours that was most of the operator's memory. Here the list comes page by page (``LIMIT``
objects a request, so a large collection is never held whole), every object is made into its
view at once and its body dropped, and only the views ``view`` returns are kept (None: not
wanted). The watch follows from the list's version, each event costing one JSON parse. A 410
lists again and replaces what the scope held, so objects deleted during a gap leave too; other
failures list again after a pause (1 s doubling to 30 s). With ``namespaces`` (the operator's
namespaced mode) there is one loop per namespace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from enclave_operator.kube import ApiException, Kube

log = logging.getLogger("enclave_operator.controller")
LIMIT = 100  # objects per list request: the pages parsed at once are the start-up peak
WATCH_SECONDS = 300  # the API server ends a watch by then; it is resumed from its last version
Key = tuple[str, str]  # (namespace, or "" for a cluster-scoped kind; name)
V = TypeVar("V")
Changed = Callable[[Key, Any, Any], None]


def replace(items: dict[Key, V], scope: str | None, found: Mapping[Key, V]) -> list[Key]:
    """Make the scope's share of ``items`` what a complete listing ``found``: the keys whose
    view came, changed or went."""
    mine = [k for k in items if scope is None or k[0] == scope]
    changed = [k for k in mine if k not in found or found[k] != items[k]]
    changed += [k for k in found if k not in items]
    for key in mine:
        if key not in found:
            del items[key]
    items.update(found)
    return changed


class ViewStream(Generic[V]):
    """``changed(key, old, new)`` is told of every view that came (old None), changed, or
    went (new None); an object whose view stays equal tells nothing."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        view: Callable[[Mapping[str, Any]], V | None],
        changed: Changed,
        namespaces: Sequence[str] = (),
        selectors: Mapping[str, str] | None = None,
    ) -> None:
        """``path``: the collection, such as ``/api/v1/pods`` (namespaced: ``/api/v1/`` and
        the plural are split around ``namespaces/<ns>/``); ``selectors``: ``labelSelector``
        and ``fieldSelector``, for the list and the watch."""
        self._kube, self._path, self._view, self._changed = kube, path, view, changed
        self._selectors = dict(selectors or {})
        self.what = path
        """What the log lines call the stream."""
        self.items: dict[Key, V] = {}
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._unlisted = set(self._scopes)
        self.listed = asyncio.Event()
        """Set once every scope has been listed."""

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(scope) for scope in self._scopes))

    def _url(self, scope: str | None, **query: str) -> str:
        head, _, plural = self._path.rpartition("/")
        where = f"{head}/namespaces/{scope}/{plural}" if scope else self._path
        return f"{where}?{urllib.parse.urlencode({**self._selectors, **query})}"

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
            except ApiException as e:
                if e.status == 410:  # too old a version, or an expired continue token
                    log.info("%s: watch too old, listing again", self.what)
                    continue
                log.warning("%s watch: %s %s; again in %.0fs", self.what, e.status, e.reason, delay)
            except Exception as e:  # a broken stream: list again after a pause
                log.warning("%s watch failed (%s); again in %.0fs", self.what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _list(self, scope: str | None) -> str:
        found: dict[Key, V] = {}
        token, version = "", ""
        while True:
            query = {"limit": str(LIMIT), **({"continue": token} if token else {})}
            page = await self._kube.get(self._url(scope, **query))
            for body in page.get("items") or ():
                if (kept := self._view(body)) is not None:
                    found[key_of(body)] = kept
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = str(meta.get("continue") or "")
            del page
            if not token:
                break
        before = dict(self.items)
        for key in replace(self.items, scope, found):
            self._changed(key, before.get(key), self.items.get(key))
        self._unlisted.discard(scope)
        if not self._unlisted:
            self.listed.set()
        return version

    async def _watch(self, scope: str | None, version: str) -> str:
        """Follow the stream until the API server ends it; the version to resume from."""
        url = self._url(
            scope,
            watch="1",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),
        )
        async with self._kube.stream(url, read_timeout=WATCH_SECONDS + 60) as lines:
            while line := await lines.readline():
                version = self.apply(line) or version
        return version

    def apply(self, line: bytes | str) -> str | None:
        """One watch event: the version it brings (None: none). An ERROR event is raised."""
        event = json.loads(line)
        body = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise ApiException(status=int(body.get("code") or 500), reason=body.get("message"))
        if event.get("type") != "BOOKMARK":
            key = key_of(body)
            new = None if event.get("type") == "DELETED" else self._view(body)
            old = self.items.pop(key, None)
            if new is not None:
                self.items[key] = new
            if old != new:
                self._changed(key, old, new)
        version = (body.get("metadata") or {}).get("resourceVersion")
        return str(version) if version else None


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name"))
