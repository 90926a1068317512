"""The CAS's store across restarts, its private files, and many registrations at once."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from enclave_operator.policies import envelope, signing
from enclave_operator.policies.client import tls_context
from enclave_operator.services.cas.identity import KEY_FILE
from enclave_operator.services.cas.store import FILE
from tests.support.cas_process import CASProcess
from tests.unit.cas_helpers import Http, Identities, policy_text, signed_body, stored

SIGNED = "/v1/policies/signed"


def facts(cas: CASProcess) -> tuple[str, str, int]:
    """instance id, encryption key, policy count."""
    http = Http(cas.client_port, cas.ca_file())
    try:
        version, key = http.call("GET", "/v1/version")[1], http.call("GET", "/v1/encryption-key")
        return version["instanceId"], key[1]["key"], version["policies"]
    finally:
        http.close()


@pytest.fixture
def identities(tmp_path: Path) -> Identities:
    return Identities.make(tmp_path / "certs")


def test_a_restart_keeps_policies_instance_and_key(tmp_path: Path, identities: Identities):
    key = signing.generate()
    cas = CASProcess(tmp_path / "db", identities.certs, tmp_path / "cas.log")
    cas.start()
    try:
        http = Http(cas.client_port, cas.ca_file())
        instance, cas_key, _ = facts(cas)
        digests = {}
        for name in ("one", "two", "three"):
            status, meta = http.call("POST", SIGNED, signed_body(policy_text(name), key))
            assert status == 201
            digests[name] = meta["digest"]
        text = policy_text("sealed-before")
        sealed = envelope.seal(text, [], envelope.load_public_key(cas_key))
        http.close()
        cas.stop()
        cas.start()
        assert facts(cas) == (instance, cas_key, 3)
        http = Http(cas.client_port, cas.ca_file())
        for name, digest in digests.items():
            status, meta = http.call("GET", f"/v1/policies/{name}")
            assert (status, meta["digest"]) == (200, digest)
            again = http.call("POST", SIGNED, signed_body(policy_text(name), key))
            assert again[0] == 200  # still the same policy: idempotent, not new
        body = {"policy": sealed, "encryptionKey": cas_key}
        assert http.call("POST", "/v1/policies/encrypted", body)[0] == 201
        http.close()
    finally:
        cas.stop()


def test_an_empty_directory_is_a_new_instance(tmp_path: Path, identities: Identities) -> None:
    cas = CASProcess(tmp_path / "db", identities.certs, tmp_path / "cas.log")
    cas.start()
    try:
        http = Http(cas.client_port, cas.ca_file())
        assert (
            http.call("POST", SIGNED, signed_body(policy_text("p"), signing.generate()))[0] == 201
        )
        http.close()
        instance, key, count = facts(cas)
        assert count == 1
        cas.stop()
        shutil.rmtree(tmp_path / "db")
        cas.start()
        fresh_instance, fresh_key, fresh_count = facts(cas)
        assert fresh_count == 0
        assert fresh_instance != instance
        assert fresh_key != key
    finally:
        cas.stop()


def test_the_key_and_the_database_are_private(tmp_path: Path, identities: Identities) -> None:
    cas = CASProcess(tmp_path / "db", identities.certs, tmp_path / "cas.log")
    cas.start()
    try:
        http = Http(cas.client_port, cas.ca_file())
        assert (
            http.call("POST", SIGNED, signed_body(policy_text("p"), signing.generate()))[0] == 201
        )
        http.close()
        files = [tmp_path / "db" / KEY_FILE, tmp_path / "db" / FILE]
        files += [tmp_path / "db" / f"{FILE}-{suffix}" for suffix in ("wal", "shm")]
        for path in files:
            if path.exists() or path.name in (KEY_FILE, FILE):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        key_pem = (tmp_path / "db" / KEY_FILE).read_text()
        secret_line = key_pem.splitlines()[1]
    finally:
        cas.stop()
    assert secret_line not in (tmp_path / "cas.log").read_text()


async def register_all(
    cas: CASProcess, bodies: list[dict[str, object]]
) -> list[tuple[int, dict[str, Any]]]:
    """Every body at once, each on its own connection."""
    connector = aiohttp.TCPConnector(ssl=tls_context(cas.ca_file()), limit=len(bodies))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: dict[str, object]) -> tuple[int, dict[str, Any]]:
            async with session.post(cas.url + SIGNED, data=json.dumps(body)) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(one(b) for b in bodies))


def test_fifty_concurrent_registrations(tmp_path: Path, identities: Identities) -> None:
    key = signing.generate()
    distinct = [signed_body(policy_text(f"distinct-{i}"), key) for i in range(20)]
    same = [signed_body(policy_text("same"), key)] * 20
    racing = [signed_body(policy_text("race", secret=f"v{i}"), key) for i in range(10)]
    cas = CASProcess(tmp_path / "db", identities.certs, tmp_path / "cas.log")
    cas.start()
    try:
        answers = asyncio.run(register_all(cas, distinct + same + racing))
        assert cas.alive()
    finally:
        cas.stop()
    assert [status for status, _ in answers[:20]] == [201] * 20
    assert Counter(status for status, _ in answers[20:40]) == {201: 1, 200: 19}
    assert len({meta["digest"] for _, meta in answers[20:40]}) == 1
    assert Counter(status for status, _ in answers[40:]) == {201: 1, 409: 9}
    winner = next(meta for status, meta in answers[40:] if status == 201)
    in_store = stored(tmp_path / "db")
    assert len(in_store) == 22
    assert in_store["race"] == winner["digest"]
    assert in_store["same"] == answers[20][1]["digest"]
