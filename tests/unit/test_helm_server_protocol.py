"""HelmRunner's side of the helm server: JSON lines out and back by id, concurrency across
releases, one action per release, and what happens when the server dies or hangs. A fake
server stands in for tools/helm-server (the real one is tested against the dev cluster)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from enclave_operator.helm.runner import HelmResult, HelmRunner

FAKE = r"""
import json, os, sys, threading, time
log = open(sys.argv[-1], "a", buffering=1)
lock = threading.Lock()
started = time.monotonic()

def answer(req):
    name = req["release"]
    log.write(json.dumps({"pid": os.getpid(), "req": req, "t": time.monotonic()}) + "\n")
    if name.startswith("slow"):
        time.sleep(0.5)
    if name == "hang":
        time.sleep(3600)
    if name == "die":
        sys.stderr.write("fatal: out of luck\n"); sys.stderr.flush()
        os._exit(3)
    if name == "fail":
        resp = {"id": req["id"], "ok": False, "error": "Error: UPGRADE FAILED: no\n"}
    else:
        resp = {"id": req["id"], "ok": True}
        if req["verb"] in ("install", "upgrade"):
            resp["revision"] = 7
    log.write(json.dumps({"done": req["id"], "release": name, "t": time.monotonic()}) + "\n")
    with lock:
        sys.stdout.write(json.dumps(resp) + "\n"); sys.stdout.flush()

for line in sys.stdin:
    threading.Thread(target=answer, args=(json.loads(line),), daemon=True).start()
"""


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "requests.jsonl"
    binary = tmp_path / "helm-server"
    binary.write_text(f"#!{sys.executable}\nimport sys\nsys.argv.append({str(log)!r})\n{FAKE}")
    binary.chmod(0o755)
    return binary, log


def gone(pid: int) -> bool:
    """No such process, or only its zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def requests(log: Path) -> list[dict[str, Any]]:
    return [e["req"] for e in entries(log) if "req" in e]


def test_requests_carry_the_action_and_responses_come_back_by_id(fake, tmp_path):
    binary, log = fake
    runner = HelmRunner(binary, None)
    chart = tmp_path / "chart"

    async def run() -> list[HelmResult]:
        try:
            return [
                await runner.install("cas-a", "ns", chart, {"size": "1Gi", "on": "on"}),
                await runner.upgrade("cas-a", "ns", chart, {"n": 2}),
                await runner.rollback("cas-a", "ns", 3),
                await runner.uninstall("cas-a", "ns"),
                await runner.upgrade("fail", "ns", chart, {}),
            ]
        finally:
            await runner.close()

    results = asyncio.run(run())
    assert results == [
        HelmResult(True, 7, ""),
        HelmResult(True, 7, ""),
        HelmResult(True, None, ""),
        HelmResult(True, None, ""),
        HelmResult(False, None, "Error: UPGRADE FAILED: no"),
    ]
    sent = requests(log)
    for r in sent:
        del r["id"]
    assert sent == [
        {"verb": "install", "release": "cas-a", "namespace": "ns", "chart": str(chart),
         "values": {"size": "1Gi", "on": "on"}},
        {"verb": "upgrade", "release": "cas-a", "namespace": "ns", "chart": str(chart),
         "values": {"n": 2}},
        {"verb": "rollback", "release": "cas-a", "namespace": "ns", "revision": 3},
        {"verb": "uninstall", "release": "cas-a", "namespace": "ns"},
        {"verb": "upgrade", "release": "fail", "namespace": "ns", "chart": str(chart),
         "values": {}},
    ]  # fmt: skip
    assert len({e["pid"] for e in entries(log) if "pid" in e}) == 1  # one process for all


def test_releases_run_side_by_side_but_one_release_one_action_at_a_time(fake, tmp_path):
    binary, log = fake
    runner = HelmRunner(binary, None)

    async def run() -> list[HelmResult]:
        try:
            await runner.uninstall("warm", "ns")  # the process is up before the clock matters
            return list(
                await asyncio.gather(
                    runner.uninstall("slow-1", "ns"),
                    runner.uninstall("slow-2", "ns"),
                    runner.uninstall("slow-1", "ns"),
                )
            )
        finally:
            await runner.close()

    assert asyncio.run(run()) == [HelmResult(True, None, "")] * 3
    got = entries(log)
    start = {e["req"]["id"]: e["t"] for e in got if "req" in e}
    done = {e["done"]: e["t"] for e in got if "done" in e}
    # ids 2 and 3 (two releases) overlap; id 4 (slow-1 again) starts after id 2 ended
    assert start[3] < done[2]
    assert start[4] >= done[2]


def test_a_dead_server_fails_its_requests_and_the_next_action_starts_another(fake):
    binary, log = fake
    runner = HelmRunner(binary, None)

    async def run() -> tuple[HelmResult, HelmResult, HelmResult]:
        try:
            first = await runner.uninstall("a", "ns")
            dead = await runner.uninstall("die", "ns")
            again = await runner.uninstall("a", "ns")
            return first, dead, again
        finally:
            await runner.close()

    first, dead, again = asyncio.run(run())
    assert first.ok
    assert again.ok
    assert not dead.ok
    assert dead.error == "helm-server ended with status 3: fatal: out of luck"
    assert len({e["pid"] for e in entries(log) if "pid" in e}) == 2


def test_a_hung_action_is_killed_with_its_server_after_the_timeout(fake):
    binary, _ = fake
    runner = HelmRunner(binary, None, timeout=2.0)

    async def run() -> tuple[int | None, HelmResult, HelmResult, HelmResult, int | None]:
        try:
            await runner.uninstall("a", "ns")
            pid = runner.server.pid
            other = asyncio.create_task(runner.uninstall("slow-other", "ns"))
            await asyncio.sleep(0.1)
            hung = await runner.uninstall("hang", "ns")
            after = await runner.uninstall("a", "ns")
            return pid, hung, await other, after, runner.server.pid
        finally:
            await runner.close()

    pid, hung, other, after, new_pid = asyncio.run(run())
    assert hung == HelmResult(False, None, "helm uninstall hang killed after 2s")
    assert other.ok  # answered before the kill
    assert after.ok
    assert pid is not None
    assert new_pid is not None
    assert new_pid != pid
    assert gone(pid)


def test_a_killed_server_fails_the_other_waiting_requests(fake):
    binary, _ = fake
    runner = HelmRunner(binary, None, timeout=1.0)

    async def run() -> tuple[HelmResult, HelmResult]:
        try:
            await runner.uninstall("warm", "ns")
            other = asyncio.create_task(runner.uninstall("hang", "other-ns"))
            await asyncio.sleep(0.1)
            hung = await runner.uninstall("hang", "ns")
            return hung, await other
        finally:
            await runner.close()

    t0 = time.monotonic()
    hung, other = asyncio.run(run())
    assert not hung.ok
    assert not other.ok
    assert "killed" in other.error
    assert time.monotonic() - t0 < 60


def test_a_cancelled_action_takes_the_server_down_with_it(fake):
    binary, _ = fake
    runner = HelmRunner(binary, None)

    async def run() -> tuple[int | None, int | None]:
        await runner.uninstall("warm", "ns")
        pid = runner.server.pid
        task = asyncio.create_task(runner.uninstall("hang", "ns"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = runner.server.pid
        await runner.close()
        return pid, after

    pid, after = asyncio.run(run())
    assert pid is not None
    assert after is None
    for _ in range(100):
        if gone(pid):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"helm server {pid} still runs")
