"""The wire formats LAS, CAS and the runtime share: quote, measurement, sealed release,
addresses. Each check is made against the documented definition, not against the code."""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from enclave_operator.attestation import address, measurement, release
from enclave_operator.attestation import quote as quotes

KEY = ed25519.Ed25519PrivateKey.generate()
M = "ab" * 32
NOW = 1_800_000_000


def issued(**kw):
    args = {"node": "node-a", "measurement": M, "report_data": b"\x07" * 32, "now": NOW, **kw}
    return quotes.issue(KEY, **args)


def test_quote_round_trip_and_documented_signed_bytes():
    q = issued()
    wire = q.as_dict()
    assert wire["format"] == "enclave-quote/v1"
    assert wire["las"] == quotes.key_id(KEY.public_key())
    parsed = quotes.parse(wire)
    assert parsed == q
    quotes.verify(parsed, now=NOW + 10)
    text = "\n".join(
        ["enclave-quote v1", M, wire["reportData"], wire["las"], "node-a", str(NOW)]
    ).encode()
    KEY.public_key().verify(base64.b64decode(wire["signature"]), text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("measurement", "cd" * 32),
        ("reportData", base64.b64encode(b"\x08" * 32).decode()),
        ("node", "node-b"),
        ("issued", NOW + 1),
        ("las", quotes.key_id(ed25519.Ed25519PrivateKey.generate().public_key())),
    ],
)
def test_any_changed_field_breaks_the_signature(field, value):
    wire = {**issued().as_dict(), field: value}
    with pytest.raises(quotes.QuoteError) as e:
        quotes.verify(quotes.parse(wire), now=NOW)
    assert e.value.field == "quote.signature"
    assert "does not verify with LAS key sha256:" in str(e.value)


@pytest.mark.parametrize("age", [quotes.MAX_AGE + 1, -quotes.MAX_AGE - 1])
def test_stale_or_future_quote_is_refused(age):
    with pytest.raises(quotes.QuoteError) as e:
        quotes.verify(issued(), now=NOW + age)
    assert e.value.field == "quote.issued"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"format": "other"}, "quote.format"),
        ({"measurement": "AB" * 32}, "quote.measurement"),
        ({"measurement": None}, "quote.measurement"),
        ({"reportData": "***"}, "quote.reportData"),
        ({"reportData": base64.b64encode(b"x" * 65).decode()}, "quote.reportData"),
        ({"las": "bm90IGEga2V5"}, "quote.las"),
        ({"las": 3}, "quote.las"),
        ({"node": "Node A\n"}, "quote.node"),
        ({"issued": "now"}, "quote.issued"),
        ({"issued": True}, "quote.issued"),
        ({"issued": -1}, "quote.issued"),
        ({"signature": "%%"}, "quote.signature"),
    ],
)
def test_malformed_quote_names_the_field(patch, field):
    with pytest.raises(quotes.QuoteError) as e:
        quotes.parse({**issued().as_dict(), **patch})
    assert e.value.field == field


def test_a_non_object_quote_and_a_non_ed25519_key_are_refused():
    with pytest.raises(quotes.QuoteError, match="must be an object"):
        quotes.parse([1])
    x = x25519.X25519PrivateKey.generate().public_key()
    der = x.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(quotes.QuoteError, match="not an Ed25519 key"):
        quotes.load_key(base64.b64encode(der).decode())


def test_las_refuses_to_issue_over_bad_input():
    with pytest.raises(quotes.QuoteError):
        issued(measurement="xyz")
    with pytest.raises(quotes.QuoteError):
        issued(report_data=b"x" * 65)
    with pytest.raises(quotes.QuoteError):
        issued(node="UPPER")


def documented_measurement(program: bytes, args: list[str]) -> str:
    h = hashlib.sha256(b"enclave-measurement v1\0" + hashlib.sha256(program).digest())
    h.update(struct.pack(">I", len(args)))
    for a in args:
        h.update(struct.pack(">I", len(a.encode())) + a.encode())
    return h.hexdigest()


def test_measurement_follows_the_documented_definition(tmp_path):
    program = tmp_path / "prog"
    program.write_bytes(b"#!/bin/sh\necho hi\n")
    program.chmod(0o755)
    got = measurement.measure(measurement.resolve(str(program)), ["a", "bc"])
    assert got == documented_measurement(program.read_bytes(), ["a", "bc"])
    # argument boundaries count: ("a", "bc") is not ("ab", "c")
    assert got != measurement.measure(program, ["ab", "c"])
    assert got != measurement.measure(program, ["a", "bc", ""])


def test_measurement_is_of_the_bytes_not_the_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for p in (a, b):
        p.write_bytes(b"same")
        p.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(a)
    assert measurement.resolve(str(link)) == a
    assert measurement.measure(a, []) == measurement.measure(b, [])
    b.write_bytes(b"changed")
    assert measurement.measure(a, []) != measurement.measure(b, [])


def test_resolution_follows_path_like_execvp(tmp_path):
    (tmp_path / "tool").write_bytes(b"x")
    (tmp_path / "tool").chmod(0o755)
    assert measurement.resolve("tool", path=str(tmp_path)) == tmp_path / "tool"
    with pytest.raises(measurement.ProgramError, match="not found in PATH"):
        measurement.resolve("tool", path=str(tmp_path / "empty"))
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(measurement.ProgramError, match="not executable"):
        measurement.resolve(str(tmp_path / "plain"))
    with pytest.raises(measurement.ProgramError, match="not a file"):
        measurement.resolve(str(tmp_path))


def grant() -> release.Release:
    return release.Release("demo", "app", ("/bin/app", "-v"), {"A": "1"}, {"PW": "hunter2"})


def test_release_round_trip_and_no_secret_in_repr():
    key = x25519.X25519PrivateKey.generate()
    sealed = release.seal(grant(), release.raw_public(key.public_key()))
    assert "hunter2" not in sealed
    opened = release.open_sealed(sealed, key, "demo/app")
    assert opened == grant()
    assert "hunter2" not in repr(opened)


def test_release_opens_only_with_the_key_and_the_config_id():
    key = x25519.X25519PrivateKey.generate()
    sealed = release.seal(grant(), release.raw_public(key.public_key()))
    with pytest.raises(release.ReleaseError) as e:
        release.open_sealed(sealed, x25519.X25519PrivateKey.generate(), "demo/app")
    assert "hunter2" not in str(e.value)
    with pytest.raises(release.ReleaseError):
        release.open_sealed(sealed, key, "demo/other")
    with pytest.raises(release.ReleaseError):
        release.open_sealed("!!", key, "demo/app")


@pytest.mark.parametrize("data", [b"", b"\x01" * 31, b"\x01" * 64])
def test_release_needs_a_32_byte_key_in_the_report_data(data):
    with pytest.raises(release.ReleaseError, match="32-byte X25519 key"):
        release.seal(grant(), data)


@pytest.mark.parametrize("text", ["demo", "demo/", "/app", "Demo/app", "a/b/c", "a b/c"])
def test_config_id_must_be_policy_slash_service(text):
    with pytest.raises(ValueError, match="policy-name/service-name"):
        release.config_id(text)
    assert release.config_id("demo.v2/app-1") == ("demo.v2", "app-1")


@pytest.mark.parametrize(
    ("given", "scheme", "port", "expected"),
    [
        ("10.0.0.5", "http", 18766, "http://10.0.0.5:18766"),
        ("10.0.0.5:9", "http", 18766, "http://10.0.0.5:9"),
        ("[::1]:9", "https", 18765, "https://[::1]:9"),
        ("https://cas.example", "https", 18765, "https://cas.example:18765"),
    ],
)
def test_addresses(given, scheme, port, expected):
    assert address.url(given, scheme, port) == expected


@pytest.mark.parametrize("bad", ["", "http://cas:1", "cas:notaport", "cas:1/path", "u@cas"])
def test_bad_addresses(bad):
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked elsewhere
        address.url(bad, "https", 18765)


def test_report_data_limits():
    assert quotes.decode_report_data(base64.b64encode(os.urandom(64)).decode())
    with pytest.raises(quotes.QuoteError):
        quotes.decode_report_data(base64.b64encode(os.urandom(65)).decode())
