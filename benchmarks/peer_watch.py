"""The one finish line for every contestant: per namespace, when the operator said done (ours
HEALTHY, helm-operator's Deployed=True) and when the CAS Deployment was Available, both seen
by this process's own watches on one clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, watch

Done = Callable[[dict[str, Any]], bool]
CAS_LABEL = "app.kubernetes.io/name=cas"


def ours_done(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("state") == "HEALTHY"


def peer_done(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Deployed" and c.get("status") == "True" for c in conditions)


def available(dep: Any) -> bool:
    conditions = (dep.status.conditions if dep.status else None) or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


class FinishLine:
    """Watches Deployments (always) and one CR kind (when given); keyed by namespace."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.lock = threading.Condition()
        self.available: dict[str, float] = {}
        self.cr_done: dict[str, float] = {}
        self.generation = 0
        self.stop = threading.Event()
        threading.Thread(target=self._deployments, daemon=True).start()

    def follow(self, group: str, version: str, plural: str, done: Done) -> None:
        """From now on, CRs of this kind decide `cr_done`; an earlier kind's watch stops."""
        with self.lock:
            self.generation += 1
            self.cr_done.clear()
        args = (self.generation, group, version, plural, done)
        threading.Thread(target=self._crs, args=args, daemon=True).start()

    def _stream(self, fn: Any, *args: Any, **kw: Any) -> Iterable[dict[str, Any]]:
        while not self.stop.is_set():
            try:
                yield from watch.Watch().stream(fn, *args, timeout_seconds=300, **kw)  # type: ignore[no-untyped-call]
            except Exception:  # a watch that expired (410) or broke: list and watch again
                time.sleep(0.2)

    def _deployments(self) -> None:
        apps = client.AppsV1Api(self.api)
        for event in self._stream(
            apps.list_deployment_for_all_namespaces, label_selector=CAS_LABEL
        ):
            dep = event["object"]
            if event["type"] != "DELETED" and available(dep):
                self._record(self.available, dep.metadata.namespace)

    def _crs(self, generation: int, group: str, version: str, plural: str, done: Done) -> None:
        crs = client.CustomObjectsApi(self.api)
        for event in self._stream(crs.list_cluster_custom_object, group, version, plural):
            if generation != self.generation:
                return
            obj = event["object"]
            if event["type"] != "DELETED" and done(obj):
                self._record(self.cr_done, obj["metadata"]["namespace"])

    def _record(self, where: dict[str, float], namespace: str) -> None:
        now = time.perf_counter()
        with self.lock:
            where.setdefault(namespace, now)
            self.lock.notify_all()

    def wait(
        self, namespaces: Iterable[str], timeout: float, with_cr: bool, also: dict[str, float]
    ) -> dict[str, float]:
        """perf_counter() at which each namespace was finished; raises on timeout. `also` adds
        finish times of another kind (helm --wait returning), folded in by max()."""
        wanted = set(namespaces)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                done = {
                    ns: max(self.available[ns], self.cr_done.get(ns, 0.0), also.get(ns, 0.0))
                    for ns in wanted
                    if ns in self.available and (not with_cr or ns in self.cr_done)
                }
                if len(done) == len(wanted):
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(wanted - set(done))
                    raise TimeoutError(
                        f"{len(missing)} not finished after {timeout:.0f}s: {missing[:5]}"
                    )
                self.lock.wait(min(left, 1.0))
