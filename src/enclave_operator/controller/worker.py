"""One reconcile pass per key: gather → observe → decide → report → act (one action)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from enclave_operator import logs
from enclave_operator.charts import chart_path
from enclave_operator.charts.kept import delete_kept, kept_objects
from enclave_operator.charts.values import release_name, release_namespace, values_for
from enclave_operator.controller import reporting, requeue
from enclave_operator.controller.caches import Caches, CRKey, cached
from enclave_operator.controller.certificates import Certificates
from enclave_operator.controller.drift import DriftRepairs
from enclave_operator.controller.gather import gather
from enclave_operator.controller.memory import EXPECT_TIMEOUT, Memory
from enclave_operator.controller.metrics import OperatorMetrics
from enclave_operator.controller.pullsecrets import PullSecrets
from enclave_operator.controller.queue import Backoff, WorkQueue
from enclave_operator.controller.versions import ServiceVersions
from enclave_operator.helm.runner import HelmRunner
from enclave_operator.kube import ApiException, Kube
from enclave_operator.reconcile import actions
from enclave_operator.reconcile.actions.context import Context
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import (
    Action,
    ActionKind,
    Condition,
    Decision,
    State,
    Status,
)
from enclave_operator.reconcile.observe import STALL_AFTER, Inputs, observe
from enclave_operator.reconcile.report import desired_status, now_iso, patch_status, post_event

log = logging.getLogger("enclave_operator.controller")
# repeated Helm failures back off
GATED = (ActionKind.INSTALL, ActionKind.UPGRADE, ActionKind.ROLLBACK)
BOOKKEEPING = (ActionKind.ADD_FINALIZER, ActionKind.REMOVE_FINALIZER)  # no Event when they work


class Controller:
    def __init__(
        self,
        kube: Kube,
        helm: HelmRunner,
        caches: Caches,
        operator_namespace: str,
        metrics: OperatorMetrics | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        """``namespaces``: the namespaced mode's namespaces (empty: every namespace)."""
        self.kube, self.helm, self.caches = kube, helm, caches
        self.metrics = metrics or OperatorMetrics()
        self.operator_namespace = operator_namespace
        self.queue: WorkQueue[CRKey] = WorkQueue()
        self.backoff = Backoff()
        self.memory: dict[CRKey, Memory] = {}
        self.drift: dict[CRKey, DriftRepairs] = {}
        self._events: set[asyncio.Task[None]] = set()
        self.versions = ServiceVersions(kube, self.queue.add)
        self.certificates = Certificates(kube, self._certificate_changed, namespaces)
        self.pull_secrets = PullSecrets(kube, self._pull_secret_changed, namespaces)

    def enqueue(self, key: CRKey) -> None:
        """What the watches call: a resource in flight goes before those not yet started."""
        mem = self.memory.get(key)
        self.queue.add(key, urgent=mem is not None and mem.in_flight)

    def _event(self, ctx: Context, reason: str, message: str, warning: bool) -> None:
        """Events go out beside the reconcile, not in its way (they are best effort anyway)."""
        task = asyncio.create_task(
            post_event(self.kube, ctx.kind, ctx.cr, reason, message, warning)
        )
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    async def run(self, workers: int = 4) -> None:
        await asyncio.gather(
            self.pull_secrets.run(),
            self.certificates.run(),
            *(self._worker() for _ in range(workers)),
        )

    async def _worker(self) -> None:
        await self.caches.views.listed.wait()  # figures from half a node list would be wrong
        while True:
            key = await self.queue.get()
            started = time.perf_counter()
            try:
                await self.reconcile(key)
                self.backoff.succeeded(("api", key))
                self.backoff.succeeded(("error", key))
            except ApiException as e:
                self._retrying(key)
                # 409: our cache was behind and its watch event is on the way; 404: gone
                stale = {409: 0.2, 404: 1.0}
                delay = stale.get(e.status) or self.backoff.failed(("api", key))
                log.info("%s: API said %s; again in %.0fs", key, e.status, delay, extra=_cr(key))
                self.queue.add_after(key, delay)
            except Exception:
                self._retrying(key)
                self.metrics.errors.labels(key.kind.singular).inc()
                delay = self.backoff.failed(("error", key))
                log.exception("%s: reconcile failed; again in %.0fs", key, delay, extra=_cr(key))
                self.queue.add_after(key, delay)
            finally:
                self.metrics.duration.labels(key.kind.singular).observe(
                    time.perf_counter() - started
                )
                self.queue.done(key)

    async def reconcile(self, key: CRKey) -> None:
        cr = self.caches.cr(key)
        if (known := self.memory.get(key)) is not None:
            cr = known.current(cr)
        if cr is None:  # gone: forget everything about it
            self.metrics.forget(key.kind.singular, key.namespace or "", key.name)
            self.versions.forget(key)
            self.memory.pop(key, None)
            self.drift.pop(key, None)
            self.queue.forget(key)
            for entry in (key, ("api", key), ("error", key)):
                self.backoff.succeeded(entry)
            return
        kind = key.kind
        mem = self.memory.setdefault(key, Memory())
        drift = self.drift.setdefault(key, DriftRepairs())
        rel_ns = release_namespace(kind, cr, self.operator_namespace)
        ctx = Context(
            kind=kind,
            cr=cr,
            release_name=release_name(kind, key.name),
            release_namespace=rel_ns,
            values={},
            chart=chart_path(kind),
            helm=self.helm,
            kube=self.kube,
        )
        pull_secret, notes = await self.pull_secrets.choose(cr.get("spec") or {}, rel_ns)
        ctx = replace(ctx, values=values_for(kind, cr, pull_secret))
        releases, release_error = self.caches.releases(rel_ns, ctx.release_name)
        now = time.time()
        figures = gather(
            self.caches,
            self.certificates,
            self.versions,
            key,
            cr.get("spec") or {},
            rel_ns,
            ctx.release_name,
            now,
        )
        synced = mem.synced(cr, releases, self.caches.lookup)
        obs = observe(
            Inputs(
                kind=kind,
                cr=cr,
                release_name=ctx.release_name,
                release_namespace=rel_ns,
                releases=releases,
                release_error=release_error,
                lookup=self.caches.lookup,
                values=ctx.values,
                chart_version=_chart_version(),
                last_failure=mem.last_failure,
                synced=synced,
                notes=notes,
                alerts=figures.alerts,
                starting=figures.starting,
                figures=tuple(Condition(t, Status(s), r, m) for t, s, r, m in figures.conditions),
                now=now,
                helm_busy=self.helm.busy(ctx.release_name, rel_ns),
                kept=kept_objects(kind, ctx.release_name, rel_ns),
                delete_kept=delete_kept(kind, cr),
                drift_repeats=drift.upgrades,
                repeated_drift=drift.drift,
            )
        )
        decision = decide(obs)
        mem.in_flight = decision.state is State.PENDING or (
            decision.action is not None and decision.action.kind is not ActionKind.WAIT
        )
        if figures.recheck_at is not None:  # a pod's grace ends then, and no event says so
            self.queue.add_after(key, max(0.0, figures.recheck_at - now) + 0.5)
        if synced and drift.seen(decision, time.monotonic()):
            self._event(ctx, "DriftPersists", decision.message("DriftPersists"), True)
        self.metrics.observe_cr(
            kind.singular, key.namespace or "", key.name, decision.state.value, figures.status
        )
        action = decision.action
        # a retry is not passing through: what failed is reported before it is tried again
        deferral = self._deferral(key, action) if action is not None else 0.0
        acts_now = action is not None and deferral == 0 and not mem.retrying
        if synced and reporting.worth_reporting(decision, acts_now):
            held = reporting.hold_back(cr, decision, mem.reported_at, time.monotonic())
            if held > 0:
                self.queue.add_after(key, held)
            elif written := await self._report(ctx, decision, mem, figures.status):
                # act on the CR as just written, or its resourceVersion check fails with 409
                ctx = replace(ctx, cr=written)
        if decision.action is not None:
            await self._act(key, ctx, decision.action, mem, synced, deferral)

    async def _report(
        self, ctx: Context, decision: Decision, mem: Memory, figures: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        cr = ctx.cr
        current = cr.get("status") or {}
        generation = int(cr["metadata"].get("generation", 0))
        status = desired_status(current, decision, generation, now_iso(), figures)
        patched = await patch_status(self.kube, ctx.kind, cr, status)
        if patched is None:
            return None
        written = cached(patched)
        mem.wrote_cr(written, _version(cr))
        mem.reported_at = time.monotonic()
        before = current.get("state")
        if before != decision.state.value:
            unhealthy = decision.state.value == "UNHEALTHY"
            message = f"{before or 'new'} → {decision.state.value}"
            self._event(ctx, "StateChanged", message, unhealthy)
        return written

    def _retrying(self, key: CRKey) -> None:
        if (mem := self.memory.get(key)) is not None:
            mem.retrying = True

    def _deferral(self, key: CRKey, action: Action) -> float:
        """Seconds before an action may run: a Helm action backs off after failures, a drift
        repair after repeats. A WAIT never runs."""
        if action.kind is ActionKind.WAIT:
            return float("inf")
        gated = self.backoff.remaining(key) if action.kind in GATED else 0
        return max(gated, self.drift[key].wait(action, time.monotonic()))

    async def _act(
        self, key: CRKey, ctx: Context, action: Action, mem: Memory, synced: bool, wait: float
    ) -> None:
        """``wait``: the action's deferral (see _deferral), as the pass computed it."""
        if action.kind is ActionKind.WAIT:
            # Watches bring the next event; these timers only cover a helm process that died
            # (the release then counts as stalled) and writes whose events never arrive.
            self.queue.add_after(key, (STALL_AFTER + 1) if synced else EXPECT_TIMEOUT + 1)
            return
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        target = action.target
        seen = _version(self.caches.lookup(target)) if target is not None else None
        log.info("%s: %s (%s)", key, action.kind.name, action.reason, extra=_cr(key))
        outcome = await actions.run(action.kind, ctx, target, action.rollback)
        mem.retrying = not outcome.ok
        if outcome.ok:
            self.drift[key].upgraded(action, time.monotonic())
        result = "ok" if outcome.ok else "failed"
        self.metrics.actions.labels(ctx.kind.singular, action.kind.name.lower(), result).inc()
        if outcome.helm_error is not None:
            mem.last_failure = outcome.helm_error
            delay = self.backoff.failed(key)
            self.queue.add_after(key, delay)
            log.warning(
                "%s: %s; next attempt in %.0fs", key, outcome.message, delay, extra=_cr(key)
            )
        elif action.kind in GATED:
            mem.last_failure = None
            self.backoff.succeeded(key)
        mem.expect(outcome, target, seen)
        if outcome.cr is not None:
            mem.wrote_cr(cached(outcome.cr), _version(ctx.cr))
            if not outcome.cr["metadata"].get("deletionTimestamp"):  # a deletion ends by event
                self.queue.add(key, urgent=True)  # the next step goes on from the answer, now
        if outcome.ok and action.kind in BOOKKEEPING:
            return  # an Event tells a user what changed; the operator's finalizer is not that
        reason = "".join(p.capitalize() for p in action.kind.name.split("_"))
        self._event(ctx, reason, outcome.message, not outcome.ok)

    def _pull_secret_changed(self, namespace: str, name: str) -> None:
        for key in requeue.naming_pull_secret(
            self.caches, self.operator_namespace, namespace, name
        ):
            self.queue.add(key)

    def _certificate_changed(self, namespace: str, name: str) -> None:
        for key in requeue.serving_certificate(self.caches, namespace, name):
            self.queue.add(key)


def _cr(key: CRKey) -> dict[str, Any]:
    """The resource a log line is about, as fields of JSON log lines."""
    return logs.cr(key.kind.kind, key.namespace, key.name)


def _version(obj: Mapping[str, Any] | None) -> str | None:
    """An object's resourceVersion as the cache shows it: opaque, compared for equality only."""
    return str(obj["metadata"].get("resourceVersion") or "") or None if obj else None


def _chart_version() -> str:
    from enclave_operator import __version__

    return __version__
