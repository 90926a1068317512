"""The gap sweeper: what a re-listing leaves behind in the caches, and what is done with it."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import kopf._cogs.clients.watching as kopf_watching

from enclave_operator.controller.gaps import (
    RELIST_LOGGER,
    RELIST_MESSAGE,
    Body,
    GapSweeper,
    RelistSignal,
    suspects,
)


def obj(uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": f"o-{uid}", "namespace": "ns"}}


def test_suspects_are_the_cached_objects_a_listing_did_not_have():
    cached = [obj("a"), obj("b"), obj("c"), {"metadata": {}}]
    assert [o["metadata"]["uid"] for o in suspects(cached, {"a", "c"})] == ["b"]


def sweep(cache: dict[str, list[str]], live: set[str], exists: set[str]) -> tuple[Any, ...]:
    listed_kinds: list[str] = []
    checked: list[str] = []
    gone: list[str] = []

    async def listed(kind: str) -> set[str]:
        listed_kinds.append(kind)
        return live

    async def still(body: Body) -> bool:
        checked.append(body["metadata"]["uid"])
        return body["metadata"]["uid"] in exists

    sweeper = GapSweeper(
        cache,
        lambda kind: [obj(u) for u in cache[kind]],
        listed,
        still,
        lambda b: gone.append(b["metadata"]["uid"]),
    )
    found = asyncio.run(sweeper.sweep())
    again = asyncio.run(sweeper.sweep())  # tombstoned objects are not checked twice
    return found, again, listed_kinds, checked, gone, sorted(sweeper.tombstones)


def test_what_a_relisting_lacks_and_a_get_confirms_is_tombstoned_and_its_owner_told():
    found, again, kinds, checked, gone, dead = sweep(
        {"deployments": ["a", "b"], "services": [], "secrets": ["c"]},
        live={"a", "c"},
        exists={"a", "c"},
    )
    assert (found, again) == (1, 0)
    assert kinds == ["deployments", "secrets", "deployments", "secrets"]  # empty kinds: no list
    assert checked == ["b"]
    assert gone == dead == ["b"]


def test_an_object_created_after_the_list_began_is_kept():
    found, _, _, checked, gone, dead = sweep({"deployments": ["a", "new"]}, {"a"}, {"a", "new"})
    assert (found, checked, gone, dead) == (0, ["new", "new"], [], [])


def test_the_relisting_signal_debounces_into_one_sweep():
    async def scenario() -> int:
        sweeps = 0

        async def listed(kind: str) -> set[str]:
            nonlocal sweeps
            sweeps += 1
            return set()

        async def never(body: Body) -> bool:
            return True

        sweeper = GapSweeper(["k"], lambda k: [obj("a")], listed, never, print, quiet=0.05)
        for _ in range(5):
            sweeper.relisted()
        await asyncio.sleep(0.2)
        return sweeps

    assert asyncio.run(scenario()) == 1


def test_the_signal_is_kopfs_own_message_and_other_records_pass_on(caplog: Any):
    """kopf says it re-lists only in a debug line: if an upgrade rewords it, this fails."""
    assert RELIST_MESSAGE in inspect.getsource(kopf_watching)
    assert kopf_watching.logger.name == RELIST_LOGGER
    seen: list[str] = []
    handler = RelistSignal(lambda: seen.append("relist"), logging.WARNING)
    logger = logging.getLogger("test.relist")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with caplog.at_level(logging.DEBUG):
            logger.debug(f"{RELIST_MESSAGE} for deployments.v1.apps cluster-wide.")
            logger.debug("Stopping the watch-stream for x")
            logger.error("Request attempt #1/6 failed")
    finally:
        logger.removeHandler(handler)
    assert seen == ["relist"]
    assert [r.getMessage() for r in caplog.records] == ["Request attempt #1/6 failed"]


def test_a_tombstoned_release_record_is_no_longer_a_release_of_its_owner():
    """The caches hand out the release records' identities to the sweeper and
    leave out a record the sweeper found gone."""
    from enclave_operator.controller.caches import RELEASES_INDEX, Caches, ReleaseEntry
    from enclave_operator.helm.releases import Release, ReleaseStatus

    def entry(uid: str, revision: int) -> ReleaseEntry:
        release = Release("r", "ns", revision, ReleaseStatus.DEPLOYED, "", "", "0.1.0")
        return ReleaseEntry(release, secret={"kind": "Secret", "metadata": {"uid": uid}})

    caches = Caches()
    caches._indexes = {RELEASES_INDEX: {("ns", "r"): [entry("u1", 1), entry("u2", 2)]}}
    assert [s["metadata"]["uid"] for s in caches.release_records()] == ["u1", "u2"]
    caches.dead = lambda body: body["metadata"]["uid"] == "u2"
    releases, error = caches.releases("ns", "r")
    assert ([r.revision for r in releases], error) == ([1], None)
