"""Repeated drift (spaced upgrades, then DriftPersists instead of more revisions), the CAS
database claim that Helm keeps, and one helm process per release at a time."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from enclave_operator.api.kinds import CAS, LAS
from enclave_operator.charts.kept import delete_kept, kept_objects
from enclave_operator.controller.drift import DRIFT_QUIET, DriftRepairs
from enclave_operator.helm.releases import ObjectRef
from enclave_operator.helm.runner import HelmRunner
from enclave_operator.reconcile.conditions import MAX_DRIFT_UPGRADES
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import ActionKind, ObservedObject, State, Status
from tests.unit.observations import DS, ME, OTHER, SVC, healthy, obj, release

DRIFTED = (obj(DS, contradictions=("DaemonSet image is evil, spec says good",)), obj(SVC))
SIGNATURE = ("daemonset.las-x: DaemonSet image is evil, spec says good",)
PVC = ObjectRef("v1", "PersistentVolumeClaim", "ns", "cas-x-db")


def test_drift_is_upgraded_until_three_upgrades_left_it_behind():
    for repeats in range(MAX_DRIFT_UPGRADES):
        obs = healthy(objects=DRIFTED, drift_repeats=repeats, repeated_drift=SIGNATURE)
        d = decide(obs)
        assert d.action is not None
        assert d.action.kind is ActionKind.UPGRADE
        assert d.action.drift == SIGNATURE
        assert {c.type: c for c in d.conditions}["DriftPersists"].status is Status.FALSE
    obs = healthy(objects=DRIFTED, drift_repeats=MAX_DRIFT_UPGRADES, repeated_drift=SIGNATURE)
    d = decide(obs)
    assert d.action is None
    persists = {c.type: c for c in d.conditions}["DriftPersists"]
    assert persists.status is Status.TRUE
    assert "image is evil" in persists.message
    assert d.state is State.UNHEALTHY


def test_other_drift_or_a_spec_change_is_upgraded_even_after_three():
    other = healthy(objects=DRIFTED, drift_repeats=5, repeated_drift=("something else",))
    assert decide(other).action.kind is ActionKind.UPGRADE
    spec = healthy(
        objects=DRIFTED,
        drift_repeats=5,
        repeated_drift=SIGNATURE,
        release=release(outdated=True),
    )
    action = decide(spec).action
    assert action.kind is ActionKind.UPGRADE
    assert action.drift == ()


def test_no_drift_no_drift_condition():
    assert "DriftPersists" not in {c.type for c in decide(healthy()).conditions}


def again(repairs: DriftRepairs):
    """The next decision, with what the repairs remember as its inputs."""
    return decide(
        healthy(objects=DRIFTED, drift_repeats=repairs.upgrades, repeated_drift=repairs.drift)
    )


def test_drift_repairs_back_off_exponentially_then_stop():
    repairs, now = DriftRepairs(), 1000.0
    first = decide(healthy(objects=DRIFTED))
    assert not repairs.seen(first, now)
    assert repairs.wait(first.action, now) == 0
    repairs.upgraded(first.action, now)
    waits = []
    for n in range(1, MAX_DRIFT_UPGRADES):
        # the other party puts its drift back a moment after each upgrade; a pass may see the
        # repaired object in between
        assert not repairs.seen(decide(healthy()), now + 0.1)
        d = again(repairs)
        assert not repairs.seen(d, now + 0.3)
        waits.append(repairs.wait(d.action, now + 0.3))
        now += waits[-1] + 0.3
        assert repairs.wait(d.action, now) == 0
        repairs.upgraded(d.action, now)
        assert repairs.upgrades == n + 1
    assert 0 < waits[0] < waits[1]
    stuck = again(repairs)
    assert stuck.action is None
    assert repairs.seen(stuck, now + 1)  # once: the Event goes out
    assert not repairs.seen(stuck, now + 100)
    assert repairs.upgrades == MAX_DRIFT_UPGRADES  # stays stopped while the drift stays


def test_the_same_drift_after_a_quiet_while_or_a_spec_change_counts_afresh():
    repairs, now = DriftRepairs(), 1000.0
    for _ in range(MAX_DRIFT_UPGRADES):
        d = again(repairs)
        repairs.seen(d, now)
        repairs.upgraded(d.action, now)
    repairs.seen(decide(healthy()), now + 1)  # repaired, and it stays so
    repairs.seen(again(repairs), now + 1 + DRIFT_QUIET + 1)
    assert repairs.upgrades == 0
    for _ in range(MAX_DRIFT_UPGRADES):
        repairs.upgraded(again(repairs).action, now)
    spec = decide(healthy(objects=DRIFTED, release=release(outdated=True)))
    repairs.seen(spec, now)
    assert repairs.upgrades == 0


def test_a_deleted_cas_keeps_its_claim_unless_the_spec_says_delete():
    gone = release(record=None)
    claim = ObservedObject(PVC, present=True, owners=(ME,))
    keep = healthy(deleting=True, release=gone, objects=(), kept=(claim,))
    action = decide(keep).action
    assert action.kind is ActionKind.DISOWN_KEPT
    assert action.target == PVC
    disowned = healthy(deleting=True, release=gone, objects=(), kept=(ObservedObject(PVC, True),))
    assert decide(disowned).action.kind is ActionKind.REMOVE_FINALIZER
    delete = healthy(deleting=True, release=gone, objects=(), kept=(claim,), delete_kept=True)
    assert decide(delete).action.kind is ActionKind.DELETE_KEPT
    foreign = ObservedObject(PVC, present=True, owners=(OTHER,))
    other = healthy(deleting=True, release=gone, objects=(), kept=(foreign,))
    assert decide(other).action.kind is ActionKind.REMOVE_FINALIZER


def test_the_claim_is_left_alone_while_the_release_exists():
    claim = ObservedObject(PVC, present=True, owners=(ME,))
    obs = healthy(deleting=True, kept=(claim,), delete_kept=True)
    assert decide(obs).action.kind is ActionKind.UNINSTALL_DELETED


def test_kept_objects_and_the_spec_field():
    assert kept_objects(CAS, "cas-x", "ns") == (PVC,)
    assert kept_objects(LAS, "las-x", "ns") == ()
    cr = {"spec": {"persistence": {"whenDeleted": "Delete"}}}
    assert delete_kept(CAS, cr)
    assert not delete_kept(CAS, {"spec": {"persistence": {"whenDeleted": "Retain"}}})
    assert not delete_kept(CAS, {"spec": {}})
    assert not delete_kept(LAS, cr)


FAKE_HELM_SERVER = """#!{python}
import json, sys, threading, time
def act(req):
    with open({log!r}, "a") as f:
        f.write(f"start {{req['release']}} {{time.time()}}\\n")
    time.sleep(0.3)
    with open({log!r}, "a") as f:
        f.write(f"end {{req['release']}} {{time.time()}}\\n")
    with lock:
        print(json.dumps({{"id": req["id"], "ok": True}}), flush=True)
lock = threading.Lock()
for line in sys.stdin:
    threading.Thread(target=act, args=(json.loads(line),)).start()
"""


def test_one_helm_action_per_release_at_a_time(tmp_path: Path):
    log = tmp_path / "log"
    helm = tmp_path / "helm-server"
    helm.write_text(FAKE_HELM_SERVER.format(python=sys.executable, log=str(log)))
    helm.chmod(0o755)
    runner = HelmRunner(helm, None)

    async def main() -> None:
        chart = tmp_path
        busy_seen = []

        async def watch() -> None:
            await asyncio.sleep(0.1)
            busy_seen.append(runner.busy("a", "ns"))

        await asyncio.gather(
            runner.upgrade("a", "ns", chart, {}),
            runner.rollback("a", "ns", 1),
            runner.uninstall("a", "ns"),
            runner.install("b", "ns", chart, {}),
            watch(),
        )
        assert busy_seen == [True]
        assert not runner.busy("a", "ns")
        await runner.close()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started >= 0.9  # the three runs on "a" one after the other
    events = [line.split() for line in log.read_text().splitlines()]
    running = 0
    for verb, name, _ in sorted(events, key=lambda e: float(e[2])):
        if name == "a":
            running += 1 if verb == "start" else -1
            assert running <= 1
    assert sum(1 for verb, release, _ in events if verb == "start" and release == "b") == 1
