"""Leader election on a coordination.k8s.io Lease, so that two operator replicas never reconcile
(and never run helm on a release) at the same time.

The rules are client-go's: a lease is taken when it is free, ours, or when its record has not
changed for ``leaseDurationSeconds`` as measured by *our* clock since we first saw that record
(the holder's clock may be skewed). The holder renews every ``retry`` seconds and gives up when
it could not renew for ``renew_deadline`` seconds, which is shorter than the lease, so it stops
acting before anyone else may start. kopf's peering only pauses operators by priority, without
such a bound, which is why it is not used here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from enclave_operator.kube import ApiException, Kube

log = logging.getLogger(__name__)

LEASE_NAME = "enclave-operator-leader"
LEASE_DURATION = 10.0
RENEW_DEADLINE = 7.0
RETRY = 2.0


@dataclass(frozen=True)
class Record:
    """What the Lease says, reduced to what the decision needs."""

    holder: str
    renew_time: str  # opaque: compared for change, never parsed against our clock
    duration: float
    transitions: int


def record_of(lease: dict[str, Any] | None) -> Record | None:
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    return Record(
        holder=str(spec.get("holderIdentity") or ""),
        renew_time=str(spec.get("renewTime") or ""),
        duration=float(spec.get("leaseDurationSeconds") or LEASE_DURATION),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def may_take(record: Record | None, me: str, seen_since: float, now: float) -> bool:
    """Whether ``me`` may write itself into the lease: it is absent, free, already ours, or
    its record has stood still for longer than its duration since we first saw it."""
    if record is None or record.holder in ("", me):
        return True
    return now - seen_since > record.duration


def micro_time(now: dt.datetime | None = None) -> str:
    """A MicroTime as the API server writes one."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry: float = RETRY,
    ) -> None:
        self.kube, self.identity, self.duration = kube, identity, duration
        self.renew_deadline, self.retry = renew_deadline, retry
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.path = f"{self.collection}/{name}"
        self.name = name
        self._seen: tuple[Record | None, float] = (None, 0.0)
        self.leading = False

    async def acquire(self) -> None:
        """Return once we hold the lease."""
        logged = False
        while not await self._try():
            if not logged:
                log.info("leader election: %s waits for lease %s", self.identity, self.path)
                logged = True
            await asyncio.sleep(self.retry)
        log.info("leader election: %s leads (lease %s)", self.identity, self.path)

    async def hold(self) -> None:
        """Renew until renewing has failed for ``renew_deadline`` seconds; then return: the
        caller must stop acting at once, another replica may take over soon."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.retry)
            try:
                ok = await asyncio.wait_for(self._try(), self.renew_deadline)
            except (TimeoutError, ApiException, OSError) as e:
                log.warning("leader election: renewing failed: %s", e)
                ok = False
            if ok:
                renewed = time.monotonic()
            elif time.monotonic() - renewed > self.renew_deadline:
                self.leading = False
                log.error("leader election: %s lost lease %s", self.identity, self.path)
                return

    async def release(self) -> None:
        """On a clean stop: hand the lease over at once instead of after its duration."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.kube.get(self.path)
            record = record_of(lease)
            if record is not None and record.holder == self.identity:
                lease["spec"].update(
                    holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_time()
                )
                await self.kube.request("PUT", self.path, lease)
                log.info("leader election: %s released lease %s", self.identity, self.path)
        except (ApiException, OSError) as e:
            log.warning("leader election: could not release the lease: %s", e)

    async def _try(self) -> bool:
        """One attempt to take or renew; True when we hold the lease afterwards."""
        try:
            lease: dict[str, Any] | None = await self.kube.get(self.path)
        except ApiException as e:
            if e.status != 404:
                raise
            lease = None
        record, now = record_of(lease), time.monotonic()
        if record != self._seen[0]:
            self._seen = (record, now)
        if not may_take(record, self.identity, self._seen[1], now):
            self.leading = False
            return False
        stamp = micro_time()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": stamp,
        }
        try:
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name},
                    "spec": {**spec, "acquireTime": stamp, "leaseTransitions": 0},
                }
                lease = await self.kube.create(self.collection, body)
            else:
                assert record is not None
                if record.holder != self.identity:
                    spec["acquireTime"] = stamp
                    spec["leaseTransitions"] = record.transitions + 1
                lease["spec"].update(spec)  # carries resourceVersion: a race loses with 409
                lease = await self.kube.request("PUT", self.path, lease)
        except ApiException as e:
            if e.status in (409, 404):
                return False
            raise
        self._seen = (record_of(lease), time.monotonic())
        self.leading = True
        return True
