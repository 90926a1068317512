"""Status bookkeeping and the operator's memory of its own writes."""

from __future__ import annotations

import asyncio

from enclave_operator.controller.memory import Memory
from enclave_operator.controller.queue import Backoff, WorkQueue
from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus
from enclave_operator.reconcile.actions.context import Outcome
from enclave_operator.reconcile.model import Condition, Decision, State, Status
from enclave_operator.reconcile.report import desired_status, merge_conditions

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_transition_time_moves_only_when_status_changes():
    old = [
        {"type": "A", "status": "True", "reason": "x", "lastTransitionTime": T0},
        {"type": "B", "status": "True", "reason": "x", "lastTransitionTime": T0},
    ]
    new = [
        Condition("A", Status.TRUE, "other reason", "new message"),
        Condition("B", Status.FALSE, "x"),
        Condition("C", Status.UNKNOWN, "x"),
    ]
    merged = {c["type"]: c for c in merge_conditions(old, new, 7, T1)}
    assert merged["A"]["lastTransitionTime"] == T0
    assert merged["A"]["reason"] == "other reason"
    assert merged["B"]["lastTransitionTime"] == T1
    assert merged["C"]["lastTransitionTime"] == T1
    assert {c["observedGeneration"] for c in merged.values()} == {7}


def test_desired_status_keeps_other_fields_and_drops_stale_conditions():
    current = {"version": "1.2", "conditions": [{"type": "Gone", "status": "True"}]}
    decision = Decision((Condition("A", Status.TRUE, "x"),), State.HEALTHY, None)
    status = desired_status(current, decision, 3, T1)
    assert status["version"] == "1.2"
    assert status["state"] == "HEALTHY"
    assert [c["type"] for c in status["conditions"]] == ["A"]
    again = desired_status(status, decision, 3, "2030-01-01T00:00:00Z")
    assert again == status, "an unchanged decision must produce an identical status (no write)"


def _cr(rv: str) -> dict[str, dict[str, str]]:
    return {"metadata": {"resourceVersion": rv}}


def _release(revision: int, status: ReleaseStatus) -> Release:
    return Release("r", "ns", revision, status, "", "", "0.1.0")


def test_memory_waits_for_the_cache_to_show_our_writes():
    ref = ObjectRef("apps/v1", "DaemonSet", "ns", "d")
    mem = Memory()
    mem.wrote_cr(_cr("10"), seen="9")  # the CR, as the API answered
    mem.expect(Outcome(True, "", expect_version="20"), ref, seen="19")
    cached = {ref: _cr("19")}
    assert not mem.synced(_cr("9"), [], cached.get)
    assert not mem.synced(_cr("10"), [], cached.get)
    cached[ref] = _cr("21")
    assert mem.synced(_cr("11"), [], cached.get)

    mem.expect(Outcome(True, "", expect_release=(2, "deployed")), None)
    assert not mem.synced(_cr("11"), [_release(1, ReleaseStatus.DEPLOYED)], cached.get)
    assert not mem.synced(_cr("11"), [_release(2, ReleaseStatus.PENDING_UPGRADE)], cached.get)
    assert mem.synced(_cr("11"), [_release(2, ReleaseStatus.DEPLOYED)], cached.get)

    mem.expect(Outcome(True, "", expect_release_gone=True), None)
    assert not mem.synced(_cr("11"), [_release(2, ReleaseStatus.DEPLOYED)], cached.get)
    assert mem.synced(_cr("11"), [], cached.get)


def test_resource_versions_are_opaque():
    """Only equality means anything: a version the cache showed before our write is stale even
    when it sorts after ours (another storage, a restored etcd), and one it never showed is
    newer even when it sorts before."""
    ref = ObjectRef("apps/v1", "DaemonSet", "ns", "d")
    mem = Memory()
    mem.wrote_cr(_cr("b7"), seen="z9")  # the status write
    mem.wrote_cr(_cr("a1"), seen="b7")  # the finalizer's
    mem.expect(Outcome(True, "", expect_version="100"), ref, seen="900")
    cached = {ref: _cr("900")}
    for stale in ("z9", "b7"):
        assert not mem.synced(_cr(stale), [], cached.get), stale
    assert not mem.synced(_cr("a1"), [], cached.get), "the DaemonSet still shows 900"
    cached[ref] = _cr("100")
    assert mem.synced(_cr("a1"), [], cached.get)

    mem.wrote_cr(_cr("5"), seen="40")
    assert not mem.synced(_cr("40"), [], cached.get)
    assert mem.synced(_cr("3"), [], cached.get), "a version it never showed came after ours"


def test_our_newest_write_stands_in_until_the_cache_shows_it():
    """The API's answer to our write is decided on while the cache still shows what came
    before it, across several writes in a row; the cache wins once it shows our version or
    one it never showed (someone else's, later)."""
    mem = Memory()
    before = {"metadata": {"resourceVersion": "9"}, "spec": {"a": 1}}
    assert mem.current(before) is before  # no write of ours yet
    finalized = {"metadata": {"resourceVersion": "10", "finalizers": ["f"]}, "spec": {"a": 1}}
    mem.wrote_cr(finalized, seen="9")
    assert mem.current(before) is finalized
    reported = {**finalized, "metadata": {"resourceVersion": "11"}, "status": {"s": 1}}
    mem.wrote_cr(reported, seen="10")  # decided on the stand-in
    assert mem.current(before) is reported, "9 predates both writes"
    assert mem.current(finalized) is reported, "10 predates the newest"
    assert mem.current(None) is None, "deleted: nothing stands in"
    shown = {**reported}
    assert mem.current(shown) is shown
    assert mem.current(before) is before, "caught up once: the stand-in is dropped"

    mem.wrote_cr({"metadata": {"resourceVersion": "12"}}, seen="11")
    theirs = {"metadata": {"resourceVersion": "13"}, "spec": {"a": 2}}
    assert mem.current(theirs) is theirs, "a version never shown came after ours"


def test_memory_gives_up_waiting_after_the_timeout_but_keeps_our_newest_write_of_the_cr():
    ref = ObjectRef("apps/v1", "DaemonSet", "ns", "d")
    mem = Memory()
    mem.wrote_cr(_cr("100"), seen="1")
    mem.expect(Outcome(True, "", expect_version="7"), ref, seen="6")
    mem.since -= 3600
    assert mem.synced(mem.current(_cr("1")) or {}, [], lambda ref: _cr("6"))
    assert not mem.object_versions
    assert mem.current(_cr("1")) == _cr("100"), "the cache still predates it"


def test_work_queue_processes_a_key_once_at_a_time_and_again_if_dirtied():
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        first = await q.get()
        q.add(first)  # changed while being processed
        second = await q.get()
        q.done(first)
        third = await q.get()
        q.done(second)
        q.done(third)
        return [first, second, third, str(len(q))]

    assert asyncio.run(scenario()) == ["a", "b", "a", "0"]


def test_work_queue_serves_urgent_keys_first_and_an_urgent_add_moves_a_waiting_key_up():
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        for key in ("new-1", "new-2", "started"):
            q.add(key)
        q.add("started", urgent=True)  # already waiting: moves ahead, not queued twice
        q.add("other", urgent=True)
        order = [await q.get() for _ in range(4)]
        for key in order:
            q.done(key)
        return [*order, str(len(q))]

    assert asyncio.run(scenario()) == ["started", "other", "new-1", "new-2", "0"]


def test_work_queue_keeps_the_urgency_of_a_key_dirtied_while_processed():
    async def scenario() -> list[str]:
        q: WorkQueue[str] = WorkQueue()
        q.add("a")
        first = await q.get()
        q.add("b")
        q.add(first, urgent=True)  # an event of ours while "a" is processed
        q.done(first)
        return [first, await q.get(), await q.get()]

    assert asyncio.run(scenario()) == ["a", "a", "b"]


def test_backoff_doubles_and_resets():
    b = Backoff(base=1, cap=5)
    assert [b.failed("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    assert b.remaining("k") > 4
    b.succeeded("k")
    assert b.remaining("k") == 0
