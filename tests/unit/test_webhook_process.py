"""The webhook's child process: restarted when it fails, left off when it says so, stopped
with the operator, and gone when the operator is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from enclave_operator.webhook import process
from enclave_operator.webhook.process import WebhookProcess, command


def test_the_command_names_the_operator_as_parent() -> None:
    argv = command("ns", "cm", "127.0.0.1", 9443, "/k", "json", True)
    assert argv[:3] == [sys.executable, "-m", "enclave_operator.webhook"]
    assert argv[argv.index("--parent") + 1] == str(os.getpid())
    assert argv[argv.index("--port") + 1] == "9443"
    assert "--verbose" in argv
    assert "--port" not in command("ns", "cm", "127.0.0.1", None, None, "text", False)


def script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


def test_a_failing_child_is_restarted_and_a_child_that_says_off_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "BACKOFF", (0.05,))
    runs = tmp_path / "runs"
    child = WebhookProcess(
        script(f"""
        import pathlib, sys
        p = pathlib.Path({str(runs)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        sys.exit(0 if n == 3 else 2)
        """)
    )
    asyncio.run(asyncio.wait_for(child.run(), 60))
    assert runs.read_text() == "3"
    assert child.starts == 3


def test_no_settings_no_process(tmp_path: Path) -> None:
    started = tmp_path / "started"

    async def none() -> None:
        return None

    child = WebhookProcess(script(f"open({str(started)!r}, 'w')"), none)
    asyncio.run(asyncio.wait_for(child.run(), 60))
    assert child.starts == 0
    assert not started.exists()


def test_cancelling_stops_the_child_with_sigterm(tmp_path: Path) -> None:
    ready, stopped = tmp_path / "ready", tmp_path / "stopped"
    child = WebhookProcess(
        script(f"""
        import pathlib, signal, sys, time
        def bye(*_):
            pathlib.Path({str(stopped)!r}).write_text("term")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        pathlib.Path({str(ready)!r}).write_text("up")
        time.sleep(60)
        """)
    )

    async def scenario() -> None:
        task = asyncio.create_task(child.run())
        for _ in range(600):
            if ready.exists():
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert stopped.read_text() == "term"


def test_the_child_goes_when_the_operator_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the operator no chance to stop its child: the kernel's parent-death
    signal must."""
    pid_file = tmp_path / "child.pid"
    child = f"""
        import os, pathlib, sys, time
        from enclave_operator.webhook.process import die_with_parent
        die_with_parent(int(sys.argv[1]))
        pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(120)
        """
    operator = f"""
        import asyncio, os, sys
        from enclave_operator.webhook.process import WebhookProcess
        argv = [sys.executable, "-c", {textwrap.dedent(child)!r}, str(os.getpid())]
        asyncio.run(WebhookProcess(argv).run())
        """
    parent = subprocess.Popen(script(operator))
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        os.kill(pid, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            assert time.monotonic() < deadline, "the child outlived the operator"
            time.sleep(0.05)
    finally:
        parent.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
