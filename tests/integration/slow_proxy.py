"""A TCP forwarder on loopback in front of the API server that holds every answer back for a
while: requests through it stay in flight long enough for a test to act inside one. TLS passes
through untouched (the API server's certificate names 127.0.0.1, whatever the port)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml


class SlowProxy:
    """``delay`` seconds before each chunk of an answer goes back to the client. A request is
    in flight on a connection from the client's first bytes until the answer's first bytes."""

    def __init__(self, upstream: str, delay: float) -> None:
        parts = urlsplit(upstream)
        self.host, self.port_up = parts.hostname or "127.0.0.1", parts.port or 443
        self.delay = delay
        self.port = 0
        self.forwarded = 0  # bytes, both ways
        self._pending: set[int] = set()  # connections with a request in flight
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def in_flight(self) -> bool:
        return bool(self._pending)

    async def _pump(self, conn: int, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    answer: bool) -> None:  # fmt: skip
        with contextlib.suppress(OSError):
            while chunk := await src.read(65536):
                if answer:
                    await asyncio.sleep(self.delay)
                    self._pending.discard(conn)
                else:
                    self._pending.add(conn)
                dst.write(chunk)
                self.forwarded += len(chunk)
                await dst.drain()
        self._pending.discard(conn)
        dst.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port_up)
        conn = id(writer)
        await asyncio.gather(
            self._pump(conn, reader, up_writer, answer=False),
            self._pump(conn, up_reader, writer, answer=True),
        )

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def kubeconfig(self, original: str, to: Path) -> str:
        """A copy of ``original`` whose cluster is reached through this proxy."""
        config = yaml.safe_load(Path(original).read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        to.write_text(yaml.safe_dump(config))
        return str(to)

    def wait_in_flight(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.in_flight():
            if time.monotonic() > deadline:
                raise AssertionError(f"no request in flight through the proxy in {timeout}s")
            time.sleep(0.01)
