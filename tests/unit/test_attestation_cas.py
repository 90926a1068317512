"""CAS's enrolment and attestation decisions, in process over a real store: every refusal
path with its status and reason, the enrolment authentication, and the schema migration."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from enclave_operator.attestation import quote as quotes
from enclave_operator.attestation import release
from enclave_operator.pki import LAS_CN, OPERATOR_CN, Authority
from enclave_operator.policies import signing
from enclave_operator.services.cas import store as store_module
from enclave_operator.services.cas.attestation import Attestation
from enclave_operator.services.cas.registry import Refusal, Registry
from enclave_operator.services.cas.store import Store, StoreError
from tests.support.las_process import policy_text

M = "5e" * 32
SECRET = "pw-" + "x" * 12


class World:
    def __init__(self, directory: Path, require_certificate: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store(directory)
        self.registry = Registry(self.store, x25519.X25519PrivateKey.generate())
        self.att = Attestation(self.registry, require_certificate)
        self.las = ed25519.Ed25519PrivateKey.generate()
        self.run(self.att.load())
        text = policy_text("demo", M, ["/bin/true"], SECRET)
        sig = signing.sign(text.encode(), signing.generate())
        self.run(self.registry.register_signed({"policy": text, "signatures": [sig.as_dict()]}))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def enrol_body(self, key=None, node="node-a", stamp=None, signer=None) -> dict[str, Any]:
        key = key or self.las
        las = quotes.key_id(key.public_key())
        stamp = int(time.time()) if stamp is None else stamp
        proof = (signer or key).sign(quotes.enrolment_message(las, node, stamp))
        return {
            "key": las,
            "node": node,
            "timestamp": stamp,
            "proof": base64.b64encode(proof).decode(),
        }

    def enrol(self, peer: bytes | None = None, **kw):
        return self.run(self.att.enrol(self.enrol_body(**kw), peer))

    def attest(self, config="demo/app", measurement=M, report=None, key=None, patch=None):
        workload = x25519.X25519PrivateKey.generate()
        data = release.raw_public(workload.public_key()) if report is None else report
        q = quotes.issue(key or self.las, "node-a", measurement, data).as_dict()
        answer = self.att.attest({"configId": config, "quote": {**q, **(patch or {})}})
        return workload, answer

    def close(self) -> None:
        self.store.close()
        self.loop.close()


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    w = World(tmp_path / "db")
    yield w
    w.close()


def refusal(fn, *args, **kw) -> Refusal:
    with pytest.raises(Refusal) as e:
        fn(*args, **kw)
    return e.value


def test_enrolled_las_quote_releases_the_grant(world):
    assert world.enrol()["created"] is True
    key, answer = world.attest()
    granted = release.open_sealed(answer["sealed"], key, "demo/app")
    assert granted.secrets == {"DB_PASSWORD": SECRET}
    assert granted.environment == {"GREETING": "hello"}
    assert granted.command == ("/bin/true",)
    assert SECRET not in str(answer)


def test_quote_from_a_las_never_enrolled(world):
    r = refusal(world.attest)
    assert (r.status, r.code) == (403, "LasNotEnrolled")
    assert quotes.fingerprint(quotes.key_id(world.las.public_key())) in r.message


def test_bad_signature_stale_quote_and_wrong_measurement(world):
    world.enrol()
    r = refusal(world.attest, patch={"measurement": "77" * 32})
    assert (r.status, r.code, r.field) == (403, "QuoteInvalid", "quote.signature")
    r = refusal(world.attest, measurement="77" * 32)
    assert (r.status, r.code) == (403, "MeasurementMismatch")
    assert M not in r.message  # the expected measurement is not disclosed
    stale = quotes.issue(world.las, "node-a", M, b"\x01" * 32, now=time.time() - 3600)
    r = refusal(world.att.attest, {"configId": "demo/app", "quote": stale.as_dict()})
    assert (r.status, r.code, r.field) == (403, "QuoteInvalid", "quote.issued")


@pytest.mark.parametrize(
    ("config", "message"),
    [("nope/app", "no policy 'nope'"), ("demo/other", "no service 'demo/other'")],
)
def test_unknown_config_id(world, config, message):
    world.enrol()
    r = refusal(world.attest, config=config)
    assert (r.status, r.code) == (404, "UnknownConfigId")
    assert message in r.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "configId"),
        ({"configId": 1}, "configId"),
        ({"configId": "x"}, "configId"),
        ({"configId": "demo/app"}, "quote"),
        ({"configId": "demo/app", "quote": {"format": "enclave-quote/v1"}}, "quote.reportData"),
    ],
)
def test_malformed_attestation_names_the_field(world, body, field):
    r = refusal(world.att.attest, body)
    assert (r.status, r.field) == (400, field)


def test_report_data_that_is_no_release_key(world):
    world.enrol()
    r = refusal(world.attest, report=b"\x01" * 16)
    assert (r.status, r.field) == (400, "quote.reportData")


def test_enrolment_refusals(world):
    now = int(time.time())
    r = refusal(world.enrol, signer=ed25519.Ed25519PrivateKey.generate())
    assert (r.status, r.code) == (403, "EnrolmentInvalid")
    r = refusal(world.enrol, stamp=now - 3600)
    assert (r.status, r.code) == (403, "EnrolmentStale")
    for patch, field in [
        ({"key": "bm90"}, "key"),
        ({"node": "Bad Node"}, "node"),
        ({"timestamp": "now"}, "timestamp"),
        ({"proof": None}, "key"),
    ]:
        body = {**world.enrol_body(), **patch}
        r = refusal(world.run, world.att.enrol(body, None))
        assert (r.status, r.field) == (400, field)
    assert world.att.keys == {}


def client_cert(authority: Authority, cn: str) -> bytes:
    pem = authority.issue(cn, client=True).cert
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_certificate_required_accepts_only_a_las_certificate(tmp_path):
    world = World(tmp_path / "db", require_certificate=True)
    ca = Authority("test", dt.timedelta(days=1))
    try:
        r = refusal(world.enrol)
        assert (r.status, r.code) == (403, "CertificateRequired")
        r = refusal(world.enrol, peer=client_cert(ca, OPERATOR_CN))
        assert r.code == "CertificateRequired"
        assert world.enrol(peer=client_cert(ca, LAS_CN))["authenticated"] is True
    finally:
        world.close()


def test_enrolment_is_idempotent_and_survives_a_restart(tmp_path):
    world = World(tmp_path / "db")
    assert world.enrol()["authenticated"] is False
    assert world.enrol()["created"] is False
    las = world.las
    world.close()
    again = World(tmp_path / "db")
    try:
        again.las = las
        assert again.enrol()["created"] is False
        key, answer = again.attest()
        assert release.open_sealed(answer["sealed"], key, "demo/app").secrets
    finally:
        again.close()


def test_store_migrates_from_schema_version_1(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    conn = sqlite3.connect(db / store_module.FILE)
    conn.executescript(store_module._SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('instance', 'old-instance')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = Store(db)
    try:
        assert store.instance_id == "old-instance"
    finally:
        store.close()
    conn = sqlite3.connect(db / store_module.FILE)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM las_keys").fetchone()[0] == 0
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 3"):
        Store(db)
