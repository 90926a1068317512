"""The CAS store in process: group commit keeps each write's outcome its own, an acknowledged
write is committed (another connection sees it), and durability stays synchronous=FULL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from enclave_operator.services.cas.store import FILE, PolicyRecord, Store


def record(name: str, digest: str = "d1") -> PolicyRecord:
    return PolicyRecord(name, "signed", digest, f"name: {name}\n", ("owner",), 1.0)


def visible(directory: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(directory / FILE)) as db:
        return dict(db.execute("SELECT name, digest FROM policies").fetchall())


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path)
    yield s
    s.close()


def test_durability_settings(store: Store) -> None:
    conn = store._writer
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_acknowledged_insert_is_committed(store: Store, tmp_path: Path) -> None:
    async def scenario() -> None:
        assert await store.insert(record("a")) == (True, record("a"))
        assert visible(tmp_path) == {"a": "d1"}  # another connection: committed, not pending
        created, existing = await store.insert(record("a", "d2"))
        assert (created, existing.digest) == (False, "d1")
        assert await store.delete("a", "d2") is False  # not the digest stored
        assert await store.delete("a", "d1") is True
        assert visible(tmp_path) == {}

    asyncio.run(scenario())


def test_one_failing_write_does_not_undo_its_batch(store: Store, tmp_path: Path) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO policies VALUES ('partial', 'k', 'd', 'p', '[]', 0)")
        raise RuntimeError("after one statement")

    def bad_sql(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO nowhere VALUES (1)")

    async def scenario() -> list[Any]:
        gate = threading.Event()
        blocker = asyncio.ensure_future(store.write(lambda _: gate.wait(30)))
        writes: list[Awaitable[Any]] = [store.insert(record(f"p{i}")) for i in range(20)]
        writes.insert(5, store.write(half_then_fail))
        writes.insert(12, store.write(bad_sql, atomic=True))
        writes += [store.insert(record("same")) for _ in range(5)]
        tasks = [asyncio.ensure_future(w) for w in writes]
        await asyncio.sleep(0)  # every task queues its write behind the blocked one…
        gate.set()  # …so they commit as one batch
        assert await blocker is True
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert isinstance(results[5], RuntimeError)
    assert isinstance(results[12], sqlite3.OperationalError)
    inserted = [r for i, r in enumerate(results) if i not in (5, 12)]
    assert [created for created, _ in inserted[:20]] == [True] * 20
    assert sorted(created for created, _ in inserted[20:]) == [False] * 4 + [True]
    assert set(visible(tmp_path)) == {f"p{i}" for i in range(20)} | {"same"}  # no 'partial'


def test_instance_and_records_survive_reopening(tmp_path: Path) -> None:
    first = Store(tmp_path)
    asyncio.run(first.insert(record("kept")))
    instance = first.instance_id
    first.close()
    again = Store(tmp_path)
    try:
        assert again.instance_id == instance
        assert again.fresh is False
        assert again.get("kept") == record("kept")
        assert again.names() == ["kept"]
    finally:
        again.close()
