"""The policy controller: SignedPolicy and EncryptedPolicy → registered in their CAS.

Watches feed an index and a keyed queue; each pass observes (the resource from the watch
cache, the CAS's version), decides (``model.decide``), acts once and reports the status when
it changed. A CAS has no watch API, so one version request per CAS address every ``resync``
seconds notices a CAS that restarted with an empty store, or came back, and enqueues its
policies; nothing else is polled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import kopf

from enclave_operator import logs
from enclave_operator.api.kinds import ENCRYPTED_POLICY, SIGNED_POLICY, Kind
from enclave_operator.controller.queue import Backoff, WorkQueue
from enclave_operator.kube import ApiException, Kube
from enclave_operator.policies.client import AddressError, CASClient, Unreachable
from enclave_operator.policies.controller import act, model, report
from enclave_operator.policies.controller.address import Target, resolve
from enclave_operator.policies.controller.trust import Trust, TrustError
from enclave_operator.reconcile.report import now_iso, patch_status, post_event

log = logging.getLogger("enclave_operator.policies")
KINDS: dict[str, Kind] = {k.plural: k for k in (SIGNED_POLICY, ENCRYPTED_POLICY)}
RESYNC = 30.0


class PolicyKey(NamedTuple):
    plural: str
    namespace: str
    name: str

    @property
    def kind(self) -> Kind:
        return KINDS[self.plural]

    @property
    def log(self) -> dict[str, Any]:
        """The resource a log line is about, as fields of JSON log lines."""
        return logs.cr(self.kind.kind, self.namespace, self.name)


def _index_id(kind: Kind) -> str:
    return f"policies_{kind.plural}"


class PolicyController:
    def __init__(
        self,
        kube: Kube,
        operator_namespace: str,
        cas_exists: Callable[[str, str], bool] = lambda _ns, _name: False,
        resync: float = RESYNC,
    ) -> None:
        self.kube, self.cas_exists, self.resync = kube, cas_exists, resync
        self.trust = Trust(kube, operator_namespace)
        self.queue: WorkQueue[PolicyKey] = WorkQueue()
        self.backoff = Backoff(base=1.0, cap=60.0)
        self._indexes: Mapping[str, Any] = {}
        self._probes: dict[str, model.Probe] = {}
        self._events: set[asyncio.Task[None]] = set()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for kind in KINDS.values():
            self._register(registry, kind)

    def _register(self, registry: kopf.OperatorRegistry, kind: Kind) -> None:
        async def index(
            namespace: str | None, name: str, body: kopf.Body, **_: Any
        ) -> dict[Any, Any]:
            return {(namespace, name): dict(body)}

        async def on_event(namespace: str | None, name: str, **kwargs: Any) -> None:
            if not self._indexes:
                self._indexes = {k: v for k, v in kwargs.items() if k.startswith("policies_")}
            self.queue.add(PolicyKey(kind.plural, namespace or "", name))

        resource = (kind.group, kind.version, kind.plural)
        kopf.index(*resource, id=_index_id(kind), registry=registry)(index)
        kopf.on.event(*resource, id=f"event_{kind.plural}", registry=registry)(on_event)

    def cr(self, key: PolicyKey) -> Mapping[str, Any] | None:
        store = (self._indexes.get(_index_id(key.kind)) or {}).get((key.namespace, key.name))
        return next(iter(store), None) if store else None

    def keys(self) -> list[PolicyKey]:
        return [
            PolicyKey(kind.plural, ns, name)
            for kind in KINDS.values()
            for ns, name in self._indexes.get(_index_id(kind)) or {}
        ]

    async def run(self, workers: int = 2) -> None:
        await asyncio.gather(self._monitor(), *(self._worker() for _ in range(workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except ApiException as e:
                delay = {409: 0.2, 404: 1.0}.get(e.status) or self.backoff.failed(("api", key))
                log.info("%s: API said %s; again in %.1fs", key, e.status, delay, extra=key.log)
                self.queue.add_after(key, delay)
            except Exception:
                delay = self.backoff.failed(("error", key))
                log.exception("%s: pass failed; again in %.0fs", key, delay, extra=key.log)
                self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)

    async def _monitor(self) -> None:
        """One version request per CAS address per resync; policies of a CAS whose answer
        changed (another instance, reachable again) are enqueued."""
        while True:
            await asyncio.sleep(self.resync)
            by_url: dict[str, list[PolicyKey]] = {}
            for key in self.keys():
                url = ((self.cr(key) or {}).get("status") or {}).get("casURL")
                if url:
                    by_url.setdefault(url, []).append(key)
            for url, keys in by_url.items():
                before = self._probes.get(url)
                target = Target(url, self._cas_of(self.cr(keys[0]) or {}))
                if await self._probe(target) != before:
                    for key in keys:
                        self.queue.add(key)

    def _cas_of(self, cr: Mapping[str, Any]) -> tuple[str, str] | None:
        meta, spec = cr.get("metadata") or {}, cr.get("spec") or {}
        address, namespace = spec.get("casAddress", ""), meta.get("namespace", "")
        try:
            return resolve(address, namespace, self.cas_exists).cas
        except AddressError:
            return None

    async def _client(self, target: Target) -> CASClient:
        return CASClient(target.url, await self.trust.context(target))

    async def _probe(self, target: Target) -> model.Probe:
        try:
            async with await self._client(target) as cas:
                probe = model.Probe(str((await cas.version())["instanceId"]))
        except (Unreachable, TrustError, KeyError) as e:
            probe = model.Probe(None, str(e))
        except Exception as e:  # a refusal of GET /v1/version: not a CAS we can use
            probe = model.Probe(None, f"{type(e).__name__}: {e}")
        self._probes[target.url] = probe
        return probe

    async def reconcile(self, key: PolicyKey) -> None:
        cr = self.cr(key)
        if cr is None:
            self.queue.forget(key)
            for entry in (key, ("api", key), ("error", key)):
                self.backoff.succeeded(entry)
            return
        meta, spec = cr["metadata"], cr.get("spec") or {}
        target, address_error = Target(""), ""
        try:
            target = resolve(spec.get("casAddress", ""), key.namespace, self.cas_exists)
        except AddressError as e:
            address_error = f"spec.casAddress: {e}"
        probe = await self._probe(target) if not address_error else model.Probe(None)
        deleted = meta.get("deletionTimestamp")
        obs = model.Observation(
            generation=int(meta.get("generation", 0)),
            has_finalizer=model.FINALIZER in (meta.get("finalizers") or []),
            deleting_for=time.time() - _unix(deleted) if deleted else None,
            status=cr.get("status") or {},
            probe=probe,
            address_error=address_error,
        )
        decision = model.decide(obs)
        outcome = await self._act(key, cr, target, decision, obs)
        status = report.desired(obs, decision, outcome, target.url, now_iso())
        if status is not None and await patch_status(self.kube, key.kind, cr, status):
            self._state_event(key.kind, cr, status)
        if decision.act is model.Act.RETRY or (outcome and not outcome.ok and not outcome.refused):
            delay = self.backoff.failed(key)
            if obs.deleting_for is not None:  # wake up when the deletion's grace ends
                delay = min(delay, max(1.0, model.DELETE_GRACE - obs.deleting_for))
            log.info(
                "%s/%s: %s; again in %.0fs",
                key.namespace,
                key.name,
                decision.reason,
                delay,
                extra=key.log,
            )
            self.queue.add_after(key, delay)
        else:
            self.backoff.succeeded(key)

    async def _act(
        self,
        key: PolicyKey,
        cr: Mapping[str, Any],
        target: Target,
        decision: model.Decision,
        obs: model.Observation,
    ) -> model.Outcome | None:
        path = self.kube.custom_path(key.kind, key.namespace, key.name)
        if decision.act is model.Act.ADD_FINALIZER:
            await act.set_finalizer(self.kube, path, cr, add=True)
        elif decision.act is model.Act.REMOVE_FINALIZER:
            await act.set_finalizer(self.kube, path, cr, add=False)
            warn = decision.reason != "never registered"
            self._event(key.kind, cr, "FinalizerRemoved", decision.reason, warn)
        elif decision.act is model.Act.REGISTER:
            async with await self._client(target) as cas:
                return await act.register(cas, key.kind, cr.get("spec") or {}, target.url)
        elif decision.act is model.Act.UNREGISTER:
            name = str(obs.status.get("policyName", ""))
            async with await self._client(target) as cas:
                outcome = await act.unregister(cas, name)
            if outcome.ok:
                await act.set_finalizer(self.kube, path, cr, add=False)
                self._event(key.kind, cr, "Unregistered", outcome.message, False)
            return outcome
        return None

    def _state_event(self, kind: Kind, cr: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        before, after = (cr.get("status") or {}).get("state"), status.get("state")
        if before == after:
            return
        registered = next(c for c in status["conditions"] if c["type"] == "Registered")
        warning = after == model.State.FAILED
        self._event(kind, cr, str(after).capitalize(), registered["message"], warning)

    def _event(
        self, kind: Kind, cr: Mapping[str, Any], reason: str, message: str, warning: bool
    ) -> None:
        task = asyncio.create_task(post_event(self.kube, kind, cr, reason, message, warning))
        self._events.add(task)
        task.add_done_callback(self._events.discard)


def _unix(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
