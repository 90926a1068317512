"""Leader election's decision and the liveness probe's verdicts, without a cluster."""

from __future__ import annotations

import asyncio
import time

from enclave_operator.controller.leader import Record, may_take, micro_time, record_of
from enclave_operator.controller.liveness import Liveness


def held(by: str, renewed: str = "2026-01-01T00:00:00.000000Z") -> Record:
    return Record(holder=by, renew_time=renewed, duration=10.0, transitions=0)


def test_a_free_absent_or_own_lease_may_be_taken():
    assert may_take(None, "me", 0.0, 0.0)
    assert may_take(held(""), "me", 100.0, 100.0)
    assert may_take(held("me"), "me", 100.0, 100.0)


def test_anothers_lease_is_taken_only_after_standing_still_for_its_duration_on_our_clock():
    record = held("other")
    assert not may_take(record, "me", seen_since=100.0, now=105.0)
    assert not may_take(record, "me", seen_since=100.0, now=110.0)
    assert may_take(record, "me", seen_since=100.0, now=110.5)


def test_the_record_is_read_from_the_lease_spec():
    lease = {
        "spec": {
            "holderIdentity": "a",
            "renewTime": "t",
            "leaseDurationSeconds": 15,
            "leaseTransitions": 3,
        }
    }
    assert record_of(lease) == Record("a", "t", 15.0, 3)
    assert record_of({"spec": {}}) == Record("", "", 10.0, 0)
    assert record_of(None) is None


def test_micro_time_has_microseconds_and_utc():
    stamp = micro_time()
    assert stamp.endswith("Z")
    assert len(stamp.split(".")[1]) == 7


def test_liveness_fails_while_the_loop_is_blocked_and_recovers():
    async def scenario() -> list[tuple[bool, str]]:
        live = Liveness(blocked_after=0.3, beat=0.05)
        live.watch("heartbeat", asyncio.create_task(live.beat()))
        await asyncio.sleep(0.1)
        seen = [live.alive()]
        time.sleep(0.5)  # blocks the loop: the heartbeat cannot run
        seen.append(live.alive())
        await asyncio.sleep(0.1)
        seen.append(live.alive())
        return seen

    before, blocked, after = asyncio.run(scenario())
    assert before[0]
    assert after[0]
    assert not blocked[0]
    assert "event loop blocked" in blocked[1]


def test_liveness_names_a_task_that_ended():
    async def scenario() -> tuple[bool, str]:
        live = Liveness()
        live.watch("heartbeat", asyncio.create_task(live.beat()))

        async def dies() -> None:
            raise RuntimeError("boom")

        task = asyncio.create_task(dies())
        live.watch("workers", task)
        await asyncio.sleep(0.05)
        verdict = live.alive()
        assert isinstance(task.exception(), RuntimeError)  # retrieved: no warning at exit
        return verdict

    ok, why = asyncio.run(scenario())
    assert not ok
    assert why == "ended: workers"


def test_an_extension_may_return_but_not_fail():
    async def scenario() -> tuple[tuple[bool, str], tuple[bool, str]]:
        live = Liveness()

        async def returns() -> None:
            return None

        async def fails() -> None:
            raise RuntimeError("boom")

        live.watch("webhook-off", asyncio.create_task(returns()), may_return=True)
        await asyncio.sleep(0.05)
        first = live.alive()
        failing = asyncio.create_task(fails())
        live.watch("policies", failing, may_return=True)
        await asyncio.sleep(0.05)
        assert isinstance(failing.exception(), RuntimeError)
        return first, live.alive()

    returned, failed = asyncio.run(scenario())
    assert returned == (True, "ok (starting)")
    assert failed == (False, "ended: policies")


def test_readiness_waits_for_ready_and_says_the_role():
    live = Liveness()
    live.role = "standby"
    assert live.readiness() == (False, "not ready (standby)")
    live.ready = True
    assert live.readiness() == (True, "ok (standby)")


def test_liveness_fails_when_a_first_listing_is_late_and_recovers_once_it_came():
    live = Liveness()
    listed = asyncio.Event()
    live.expect("nodes and pods listed", listed.is_set, within=0.05)
    assert live.alive() == (True, "ok (starting)")  # not yet due
    time.sleep(0.1)
    assert live.alive() == (False, "not yet: nodes and pods listed")
    assert live.readiness()[0] is False
    listed.set()
    assert live.alive() == (True, "ok (starting)")
