"""The helm server as a child process: JSON lines in and out, started on first use, started
again after it died.

One process serves every release so that its kube client, discovery and REST mapper are built
once; a helm process per action built them every time (tools/helm-server). The server ends
when its stdin closes or the operator dies (it asks the kernel for SIGKILL on its parent's
death), and it shares the operator's process group, so killing that group kills it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STREAM_LIMIT = 1 << 20  # bytes per response line; responses are a few hundred
STDERR_TAIL = 4000  # characters of the server's stderr kept for the error of a dead server


class ServerGone(Exception):
    """The server ended (or was killed) before answering."""


class _Channel:
    """One server process and the requests waiting on it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.stderr = ""
        self.killed = False
        errors = asyncio.create_task(self._read_stderr())
        self.reader = asyncio.create_task(self._read_responses(errors))

    @property
    def alive(self) -> bool:
        return not self.killed and self.proc.returncode is None

    def kill(self, reason: str) -> None:
        self.killed = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.fail(reason)

    def fail(self, reason: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ServerGone(reason))

    async def _read_responses(self, errors: asyncio.Task[None]) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                response = json.loads(line)
                future = self.pending.get(int(response["id"]))
            except (ValueError, KeyError, TypeError):
                continue  # not a response; the server writes nothing else on stdout
            if future is not None and not future.done():
                future.set_result(response)
        code = await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(errors, 2)
        tail = self.stderr.strip()
        self.fail(f"helm-server ended with status {code}" + (f": {tail}" if tail else ""))

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self.stderr = (self.stderr + chunk.decode(errors="replace"))[-STDERR_TAIL:]


class HelmServer:
    """One helm-server process at a time; ``call`` starts it when there is none."""

    def __init__(self, binary: Path, kubeconfig: str | None) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self._channel: _Channel | None = None
        self._killed: list[_Channel] = []  # until their process is reaped
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        """The running server's process id, if one runs."""
        channel = self._channel
        return channel.proc.pid if channel is not None and channel.alive else None

    async def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its response (no timeout here: see ``kill``)."""
        channel = await self._running()
        self._next_id += 1
        ident = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        channel.pending[ident] = future
        try:
            stdin = channel.proc.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps({**request, "id": ident}).encode() + b"\n")
                await stdin.drain()
            except (ConnectionError, RuntimeError) as e:
                raise ServerGone(f"helm-server is gone: {e}") from e
            return await future
        finally:
            channel.pending.pop(ident, None)

    def kill(self, reason: str) -> None:
        """Kill the server: the only way to stop an action stuck inside it. Every request
        waiting on it fails with ``reason``; the next call starts a new server."""
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.kill(reason)
            self._killed = [c for c in self._killed if not c.reader.done()] + [channel]

    async def close(self) -> None:
        """Close the server's stdin (it exits) and wait for it, and for killed ones."""
        if self._loop is not asyncio.get_running_loop():
            self._forget()  # started under another event loop: nothing to wait for here
            return
        channel, self._channel = self._channel, None
        killed, self._killed = self._killed, []
        if channel is not None and channel.proc.returncode is None:
            if channel.proc.stdin is not None:
                channel.proc.stdin.close()
            try:
                await asyncio.wait_for(channel.proc.wait(), 10)
            except TimeoutError:
                channel.kill("helm-server closed")
        for c in [*killed, *([channel] if channel is not None else [])]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(c.reader), 10)

    async def _running(self) -> _Channel:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A process started under another (finished) event loop cannot be used here.
            self._forget()
            self._loop, self._starting = loop, asyncio.Lock()
        assert self._starting is not None
        async with self._starting:
            if self._channel is None or not self._channel.alive:
                self._channel = await self._start()
            return self._channel

    def _forget(self) -> None:
        channel, self._channel = self._channel, None
        self._killed = []
        if channel is not None and channel.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(channel.proc.pid, signal.SIGKILL)

    async def _start(self) -> _Channel:
        env = dict(os.environ)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = self.kubeconfig
        proc = await asyncio.create_subprocess_exec(
            str(self.binary),
            f"--parent={os.getpid()}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=STREAM_LIMIT,
        )
        return _Channel(proc)
