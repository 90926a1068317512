"""The CAS database: SQLite in WAL mode, one writer thread with group commit.

Every write is acknowledged only after its transaction committed with ``synchronous=FULL``,
so an acknowledged registration survives a crash. Concurrent requests are folded into one
transaction (each in its own savepoint, so one failure does not undo the others), which keeps
the fsync count per second low under load. Reads use a second connection; WAL lets them run
beside the writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("enclave_operator.cas.store")
SCHEMA_VERSION = 2
FILE = "cas.sqlite3"
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policies (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    policy TEXT NOT NULL,
    owners TEXT NOT NULL,
    created REAL NOT NULL
);
"""

_MIGRATIONS = {
    # 1 → 2: the attestation keys of enrolled LAS instances (services/cas/attestation.py)
    1: """
CREATE TABLE IF NOT EXISTS las_keys (
    key TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    authenticated INTEGER NOT NULL,
    enrolled REAL NOT NULL
);
""",
}


class StoreError(RuntimeError):
    """The database cannot be used (wrong schema version, unreadable file)."""


@dataclass(frozen=True)
class PolicyRecord:
    name: str
    kind: str
    digest: str
    policy: str
    owners: tuple[str, ...]
    created: float


def _record(row: tuple[Any, ...]) -> PolicyRecord:
    name, kind, digest, policy, owners, created = row
    return PolicyRecord(name, kind, digest, policy, tuple(json.loads(owners)), created)


@dataclass
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    atomic: bool


class Store:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILE
        self.fresh = not self.path.exists()
        if self.fresh:  # policies hold secrets: the file (and SQLite's -wal, -shm) stay private
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        version = self._writer.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION, *_MIGRATIONS):
            raise StoreError(f"{self.path}: schema version {version}, expected {SCHEMA_VERSION}")
        for step in range(max(version, 1), SCHEMA_VERSION):  # a new store starts at 1 too
            self._writer.executescript(_MIGRATIONS[step])
            if version:
                log.info("%s: schema version %d migrated to %d", self.path, step, step + 1)
        self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
        if row is None:  # an empty store is a new instance: clients re-register everything
            self.instance_id = uuid.uuid4().hex
            self._writer.execute("INSERT INTO meta VALUES ('instance', ?)", (self.instance_id,))
        else:
            self.instance_id = row[0]
        self._reader = self._connect()
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="cas-store", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._reader.close()
        self._writer.close()

    async def write(self, fn: Callable[[sqlite3.Connection], T], atomic: bool = False) -> T:
        """Run fn in the next group transaction; return its result once committed. ``atomic``:
        fn writes with at most one statement and nothing after it can fail; SQLite undoes a
        failed statement by itself, so fn needs no savepoint (two statements fewer)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Op(fn, future, atomic))
        return await future

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                if op is None:
                    self._queue.put(None)
                    break
                batch.append(op)
            self._commit(batch)

    def _commit(self, batch: list[_Op]) -> None:
        """One transaction for the batch. Every statement releases and retakes the GIL, which
        the busy event loop may hold for a while, so the batch runs as few as it can."""
        results: list[tuple[bool, Any]] = []
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                if op.atomic:
                    try:
                        results.append((True, op.fn(conn)))
                    except Exception as e:
                        results.append((False, e))
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, op.fn(conn)))
                except Exception as e:
                    conn.execute("ROLLBACK TO op")
                    results.append((False, e))
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            log.error("transaction of %d writes failed: %s", len(batch), e)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(False, StoreError(f"database write failed: {e}"))] * len(batch)
        loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for op, (ok, value) in zip(batch, results, strict=True):
            loops.setdefault(op.future.get_loop(), []).append((op.future, ok, value))
        for loop, settled in loops.items():  # one wake-up of each loop per batch
            loop.call_soon_threadsafe(_settle, settled)

    # reads: on the event loop's thread, beside the writer

    def get(self, name: str) -> PolicyRecord | None:
        row = self._reader.execute(
            "SELECT name, kind, digest, policy, owners, created FROM policies WHERE name = ?",
            (name,),
        ).fetchone()
        return _record(row) if row else None

    def count(self) -> int:
        return int(self._reader.execute("SELECT count(*) FROM policies").fetchone()[0])

    def names(self) -> list[str]:
        return [r[0] for r in self._reader.execute("SELECT name FROM policies ORDER BY name")]

    # writes

    async def insert(self, record: PolicyRecord) -> tuple[bool, PolicyRecord]:
        """(True, record) when stored now; (False, existing) when the name is taken."""
        row = (
            record.name,
            record.kind,
            record.digest,
            record.policy,
            json.dumps(list(record.owners)),
            record.created,
        )

        def op(conn: sqlite3.Connection) -> tuple[bool, PolicyRecord]:
            cur = conn.execute(
                "INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING", row
            )
            if cur.rowcount == 1:
                return True, record
            existing = conn.execute(
                "SELECT name, kind, digest, policy, owners, created FROM policies WHERE name = ?",
                (record.name,),
            ).fetchone()
            return False, _record(existing)

        return await self.write(op, atomic=True)

    async def delete(self, name: str, digest: str) -> bool:
        """Delete the policy if it still has this digest (a concurrent replacement wins)."""

        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM policies WHERE name = ? AND digest = ?", (name, digest))
            return cur.rowcount > 0

        return await self.write(op, atomic=True)


def _settle(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():  # the request was cancelled; its write still happened
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def now() -> float:
    return time.time()
