"""The autoUpdate controller: for every LAS and SGXPlugin with ``autoUpdate: true``, a timer
per resource asks the image's registry for its tags every ``interval`` seconds (at once when
the spec's image, scope or pull secrets change), and moves ``spec.image`` to the newest
version ``autoUpdateScope`` allows. The service controller sees the new spec and upgrades the
release, which rolls the DaemonSet. Each update is an Event and the AutoUpdate condition's
message ("from X to Y"); an unreachable registry makes the condition False and the next check
back off. Nothing else of the resource is touched."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import kopf

from enclave_operator import logs
from enclave_operator.api.kinds import LAS, SGXPLUGIN, Kind
from enclave_operator.autoupdate import plan
from enclave_operator.autoupdate.reference import CredentialsError, parse_reference
from enclave_operator.autoupdate.registry import (
    CredentialsRefused,
    RegistryError,
    Unreachable,
    list_tags,
)
from enclave_operator.autoupdate.secrets import pull_secret
from enclave_operator.autoupdate.versions import choose
from enclave_operator.charts.values import release_namespace
from enclave_operator.controller.queue import WorkQueue
from enclave_operator.kube import ApiException, Kube
from enclave_operator.reconcile.report import post_event

log = logging.getLogger("enclave_operator.autoupdate")
KINDS: dict[str, Kind] = {k.plural: k for k in (LAS, SGXPLUGIN)}
INTERVAL = 300.0


class Key(NamedTuple):
    plural: str
    name: str

    @property
    def kind(self) -> Kind:
        return KINDS[self.plural]


def _index_id(kind: Kind) -> str:
    return f"autoupdate_{kind.plural}"


def _fingerprint(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    secrets = tuple(str(s.get("name")) for s in spec.get("imagePullSecrets") or [])
    return (spec.get("image"), spec.get("autoUpdateScope"), secrets, spec.get("namespace"))


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's CAs, and ``ca_file`` (a private registry's CA) beside them."""
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


class AutoUpdater:
    def __init__(
        self,
        kube: Kube,
        operator_namespace: str,
        _cas_exists: object = None,
        interval: float = INTERVAL,
        ca_file: str | None = None,
    ) -> None:
        self.kube, self.operator_namespace, self.interval = kube, operator_namespace, interval
        self.ssl = ssl_context(ca_file if ca_file and Path(ca_file).exists() else None)
        self.queue: WorkQueue[Key] = WorkQueue()
        self._indexes: Mapping[str, Any] = {}
        self._seen: dict[Key, tuple[Any, ...]] = {}
        self._failures: dict[Key, int] = {}
        self._last: dict[Key, plan.Verdict] = {}  # the condition last written, per resource
        self._restore: set[Key] = set()
        self._events: set[asyncio.Task[None]] = set()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for kind in KINDS.values():
            self._register(registry, kind)

    def _register(self, registry: kopf.OperatorRegistry, kind: Kind) -> None:
        async def index(name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
            return {name: dict(body)}

        async def on_event(name: str, body: kopf.Body, **kwargs: Any) -> None:
            if not self._indexes:
                self._indexes = {k: v for k, v in kwargs.items() if k.startswith("autoupdate_")}
            self._changed(Key(kind.plural, name), body)

        resource = (kind.group, kind.version, kind.plural)
        kopf.index(*resource, id=_index_id(kind), registry=registry)(index)
        kopf.on.event(*resource, id=f"autoupdate_event_{kind.plural}", registry=registry)(on_event)

    def _changed(self, key: Key, body: Mapping[str, Any]) -> None:
        """A check now when what it depends on changed; otherwise the timer stands. A status
        whose AutoUpdate condition is not the last one written (another writer's stale copy),
        or that keeps one after autoUpdate was turned off, is put right without a check."""
        spec, status = body.get("spec") or {}, body.get("status")
        deleting = (body.get("metadata") or {}).get("deletionTimestamp")
        if not spec.get("autoUpdate") or deleting:
            self._seen.pop(key, None)
            self._failures.pop(key, None)
            self._last.pop(key, None)
            self.queue.forget(key)
            if not deleting and plan.find_condition(status) is not None:
                self._restore.add(key)
                self.queue.add(key)
            return
        fingerprint = _fingerprint(spec)
        last = self._last.get(key)
        if self._seen.get(key) != fingerprint:
            self._seen[key] = fingerprint
            self.queue.forget(key)
            self.queue.add(key)
        elif last is not None and not plan.same_condition(plan.find_condition(status), last):
            self._restore.add(key)
            self.queue.add(key)

    def cr(self, key: Key) -> Mapping[str, Any] | None:
        store = (self._indexes.get(_index_id(key.kind)) or {}).get(key.name)
        return next(iter(store), None) if store else None

    async def run(self, workers: int = 2) -> None:
        await asyncio.gather(*(self._worker() for _ in range(workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            extra = logs.cr(key.kind.kind, None, key.name)
            try:
                if key in self._restore:
                    self._restore.discard(key)
                    await self.restore(key)
                    delay = None
                else:
                    delay = await self.check(key)
            except ApiException as e:
                delay = 1.0 if e.status in (404, 409) else 10.0
                log.info("%s: API said %s; again in %.0fs", key.name, e.status, delay, extra=extra)
            except Exception:
                delay = self.interval
                log.exception("%s: check failed; again in %.0fs", key.name, delay, extra=extra)
            finally:
                self.queue.done(key)
            if delay is not None and key in self._seen:
                self.queue.add_after(key, delay)

    async def restore(self, key: Key) -> None:
        """The last condition written again, or none once autoUpdate is off."""
        cr = self.cr(key)
        if cr is None:
            return None
        if not (cr.get("spec") or {}).get("autoUpdate"):
            if plan.find_condition(cr.get("status")) is not None:
                await self._write_conditions(key, cr, None)
            return None
        last = self._last.get(key)
        if last is not None and not plan.same_condition(
            plan.find_condition(cr.get("status")), last
        ):
            await self._report(key, cr, last)
        return None

    async def check(self, key: Key) -> float | None:
        """One look at the registry; returns when to look again (None: not before the spec
        changes)."""
        cr = self.cr(key)
        spec = (cr or {}).get("spec") or {}
        if cr is None or not spec.get("autoUpdate"):
            return None
        image = str(spec.get("image") or "")
        ref = parse_reference(image)
        previous = plan.find_condition(cr.get("status"))
        if ref is None:
            why = f"spec.image {image!r} has no tag to compare (a digest or no tag)"
            await self._report(key, cr, plan.Verdict("False", "NotSemanticVersion", why))
            return None
        namespace = release_namespace(key.kind, cr, self.operator_namespace)
        try:
            secret = await pull_secret(self.kube, spec, namespace, ref.host)
            tags = await list_tags(ref, secret.auth, self.ssl)
        except Unreachable as e:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = plan.next_check(self.interval, failures)
            message = f"{e}; next check in {delay:.0f}s"
            await self._report(key, cr, plan.Verdict("False", "RegistryUnreachable", message))
            return delay
        except CredentialsRefused as e:
            named = f" with Secret {namespace}/{secret.name}" if secret.name else ""
            verdict = plan.Verdict("False", "CredentialsRefused", f"{e}{named}")
            await self._report(key, cr, verdict)
            return self.interval
        except (RegistryError, CredentialsError) as e:
            await self._report(key, cr, plan.Verdict("False", "RegistryError", str(e)))
            return self.interval
        self._failures.pop(key, None)
        choice = choose(ref.tag, tags, str(spec.get("autoUpdateScope") or "Minor"))
        moved = (
            ref.with_tag(choice.tag, image) if not isinstance(choice, str) and choice.tag else None
        )
        verdict = plan.after_choice(choice, moved, previous)
        await self._report(key, cr, verdict)
        return self.interval

    async def _report(self, key: Key, cr: Mapping[str, Any], verdict: plan.Verdict) -> None:
        """The condition (only when it changed), then spec.image, then the Event."""
        previous = plan.find_condition(cr.get("status"))
        path = self.kube.custom_path(key.kind, None, key.name)
        rv = cr["metadata"].get("resourceVersion")
        if not plan.same_condition(previous, verdict):
            rv = await self._write_conditions(key, cr, verdict)
            if verdict.status == "False" and (previous or {}).get("reason") != verdict.reason:
                self._event(key, cr, verdict.reason, verdict.message, warning=True)
        self._last[key] = plan.Verdict(verdict.status, verdict.reason, verdict.message)
        if verdict.image is not None:
            body = {"metadata": {"resourceVersion": rv}, "spec": {"image": verdict.image}}
            await self.kube.merge_patch(path, body)
            extra = logs.cr(key.kind.kind, None, key.name)
            log.info("%s: autoUpdate %s", key.name, verdict.message, extra=extra)
            self._event(key, cr, "AutoUpdated", verdict.message, warning=False)

    async def _write_conditions(
        self, key: Key, cr: Mapping[str, Any], verdict: plan.Verdict | None
    ) -> str:
        """The status's conditions with ours replaced by `verdict` (None: removed). With the
        resourceVersion: a stale copy gets 409 and is retried, never written over."""
        meta = cr["metadata"]
        previous = plan.find_condition(cr.get("status"))
        conditions = [
            c for c in (cr.get("status") or {}).get("conditions") or [] if c is not previous
        ]
        if verdict is not None:
            changed = previous is None or previous.get("status") != verdict.status
            since = _now() if changed else (previous or {}).get("lastTransitionTime", _now())
            conditions.append(
                {
                    **verdict.condition(),
                    "lastTransitionTime": since,
                    "observedGeneration": int(meta.get("generation", 0)),
                }
            )
        body = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "status": {"conditions": conditions},
        }
        path = self.kube.custom_path(key.kind, None, key.name) + "/status"
        patched = await self.kube.merge_patch(path, body)
        return str(patched["metadata"]["resourceVersion"])

    def _event(
        self, key: Key, cr: Mapping[str, Any], reason: str, message: str, warning: bool
    ) -> None:
        task = asyncio.create_task(post_event(self.kube, key.kind, cr, reason, message, warning))
        self._events.add(task)
        task.add_done_callback(self._events.discard)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
