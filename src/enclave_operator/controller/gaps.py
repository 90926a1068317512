"""Owned objects and release records deleted while a watch was down.

When a watch cannot resume (410 Gone, e.g. after a kube-apiserver restart whose watch cache
no longer reaches back to our resourceVersion), kopf lists the kind again and reports every
object the list has, but nothing about the objects it lacks: they stay in kopf's indexes for
good, and the operator would keep trusting an owned object that is gone instead of recreating
it. A listing that comes back empty produces no event at all.

kopf says it re-lists only in a debug log line ("Restarting the watch-stream"), which
``RelistSignal`` catches. ``QUIET`` seconds after the last one, the sweeper lists each owned kind
that has cached objects (one request per kind, with the watches' label selector). A cached
object missing from that list is confirmed with a GET (it may have been created after the list
began), then tombstoned, so the caches skip it, and its CR is reconciled, which recreates it.
Helm's release records (kopf's Secret watch) are swept the same way: a record that is gone is
a release to install again. Nothing runs between re-listings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from enclave_operator.controller.caches import Caches, CRKey
from enclave_operator.controller.registry import HELM_NAMESPACE, HELM_RELEASE, PART_OF
from enclave_operator.helm.releases import OPERATOR_LABEL, ObjectRef
from enclave_operator.kube import OWNED_KINDS, ApiException, Kube

log = logging.getLogger(__name__)

QUIET = 2.0
"""Seconds after the last re-listing before the sweep: kopf re-lists every kind at once."""
RELIST_LOGGER = "kopf._cogs.clients.watching"
RELIST_MESSAGE = "Restarting the watch-stream"

Body = Mapping[str, Any]


def uid_of(body: Body) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


def suspects(cached: Iterable[Body], live: set[str]) -> list[Body]:
    """Cached objects a fresh listing did not have."""
    return [b for b in cached if uid_of(b) and uid_of(b) not in live]


class GapSweeper:
    def __init__(
        self,
        kinds: Iterable[str],
        cached: Callable[[str], list[Body]],
        listed: Callable[[str], Awaitable[set[str]]],
        exists: Callable[[Body], Awaitable[bool]],
        gone: Callable[[Body], None],
        quiet: float = QUIET,
    ) -> None:
        self.kinds, self.cached, self.listed = tuple(kinds), cached, listed
        self.exists, self.gone, self.quiet = exists, gone, quiet
        self.tombstones: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[int]] = set()

    def dead(self, body: Body) -> bool:
        return uid_of(body) in self.tombstones

    def relisted(self) -> None:
        """A watch re-lists (on the event loop's thread): sweep once they are all done."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.quiet, self._start)

    def _start(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.sweep())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sweep(self) -> int:
        """Tombstone what the re-listings left behind; how many."""
        found = 0
        for kind in self.kinds:
            cached = [b for b in self.cached(kind) if not self.dead(b)]
            if not cached:
                continue
            try:
                live = await self.listed(kind)
                for body in suspects(cached, live):
                    if not await self.exists(body):
                        log.info("%s %s was deleted while the watch was down", kind, _name(body))
                        self.tombstones.add(uid_of(body))
                        self.gone(body)
                        found += 1
            except Exception as e:  # the next re-listing sweeps again
                log.warning("after a re-listing, could not check %s: %s", kind, e)
        return found


class RelistSignal(logging.Handler):
    """Installed on kopf's watching logger: calls ``relisted`` on a re-listing and hands every
    other record at or above ``passing`` to the root logger's handlers, as before."""

    def __init__(self, relisted: Callable[[], None], passing: int) -> None:
        super().__init__(logging.DEBUG)
        self.relisted, self.passing = relisted, passing

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(RELIST_MESSAGE):
            with contextlib.suppress(RuntimeError):  # off the operator's loop: nothing to sweep
                self.relisted()
        if record.levelno >= self.passing:
            logging.getLogger().handle(record)

    @classmethod
    def install(cls, relisted: Callable[[], None]) -> RelistSignal:
        watching = logging.getLogger(RELIST_LOGGER)
        handler = cls(relisted, watching.getEffectiveLevel())
        watching.addHandler(handler)
        watching.setLevel(logging.DEBUG)
        watching.propagate = False
        return handler


def for_operator(kube: Kube, caches: Caches, enqueue: Callable[[CRKey], None]) -> GapSweeper:
    """The sweeper of the owned kinds and of Helm's release records, wired to the operator's
    caches and queue. Listings and checks ask for metadata only: uids are all they compare."""
    selector = urllib.parse.quote(PART_OF)
    records = urllib.parse.quote(f"owner=helm,{OPERATOR_LABEL[0]}={OPERATOR_LABEL[1]}")

    async def listed(plural: str) -> set[str]:
        if plural == "secrets":
            items = await _release_records(kube, records, caches)
        else:
            prefix = next(p for p, name in OWNED_KINDS.values() if name == plural)
            query = f"{prefix}/{plural}?labelSelector={selector}"
            items = (await kube.metadata(query)).get("items") or []
        return {uid_of(item) for item in items}

    async def exists(body: Body) -> bool:
        meta = body.get("metadata") or {}
        ref = ObjectRef(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
        path = (
            f"/api/v1/namespaces/{ref.namespace}/secrets/{ref.name}"
            if ref.kind == "Secret"
            else Kube.object_path(ref)
        )
        try:
            found = await kube.metadata(path)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return uid_of(found) == uid_of(body)

    def gone(body: Body) -> None:
        meta = body.get("metadata") or {}
        if body.get("kind") == "Secret":  # a release record: Helm's labels name the release
            release, namespace = (meta.get("labels") or {}).get("name"), meta.get("namespace")
        else:
            annotations = meta.get("annotations") or {}
            release, namespace = annotations.get(HELM_RELEASE), annotations.get(HELM_NAMESPACE)
        if release and namespace and (owner := caches.owner_of_release(namespace, release)):
            enqueue(owner)

    def cached(plural: str) -> list[Body]:
        return caches.release_records() if plural == "secrets" else caches.owned(plural)

    kinds = [*(plural for _, plural in OWNED_KINDS.values()), "secrets"]
    sweeper = GapSweeper(kinds, cached, listed, exists, gone)
    caches.dead = sweeper.dead
    return sweeper


async def _release_records(kube: Kube, selector: str, caches: Caches) -> list[Body]:
    """Every release record of ours: one listing, or one per namespace with records when
    Secrets may not be listed cluster-wide (the namespaced mode's Roles)."""
    try:
        return list(
            (await kube.metadata(f"/api/v1/secrets?labelSelector={selector}")).get("items") or []
        )
    except ApiException as e:
        if e.status != 403:
            raise
    namespaces = sorted({str(b["metadata"]["namespace"]) for b in caches.release_records()})
    items: list[Body] = []
    for ns in namespaces:
        listing = await kube.metadata(f"/api/v1/namespaces/{ns}/secrets?labelSelector={selector}")
        items.extend(listing.get("items") or [])
    return items


def _name(body: Body) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}".lstrip("/")
