"""The policy format (every validation error names its line and field), signatures (Ed25519 and
ECDSA P-256) and HPKE envelopes: round trips, and each way they are refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from enclave_operator.policies import document, envelope, signing
from tests.unit.cas_helpers import MEASUREMENT, policy_text

GOOD = policy_text("good", secret="s3cret")


def test_a_valid_policy_parses() -> None:
    policy = document.parse(GOOD)
    assert policy.name == "good"
    assert policy.secrets == {"db-password": "s3cret"}
    api = policy.service("api")
    assert api is not None
    assert api.measurement == MEASUREMENT
    assert api.command == ("/app/server", "--port", "8443")
    assert api.environment == {"LOG_LEVEL": "info"}
    assert api.secrets == {"DB_PASSWORD": "db-password"}
    assert document.digest(GOOD) == hashlib.sha256(GOOD.encode()).hexdigest()


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


SERVICE = "  - name: api\n"
SECRET = "  - name: db-password\n"
# (policy text, line, field, words in the reason)
INVALID = [
    (edit("name: good", "name: Good!"), 1, "name", "is not a name"),
    (edit("name: good\n", ""), 1, "name", "is required"),
    (GOOD + "colour: blue\n", 13, "colour", "unknown field"),
    (GOOD + "name: again\n", 13, "name", "appears twice"),
    (
        edit('secrets:\n  - name: db-password\n    value: "s3cret"', "secrets: {}"),
        2,
        "secrets",
        "must be a list",
    ),
    (edit('    value: "s3cret"', "    value: 42"), 4, "secrets[0].value", "must be a string"),
    (
        edit("  - name: db-password\n", "  - name: db-password\n    value: a\n" + SECRET),
        5,
        "secrets[1].name",
        "appears twice",
    ),
    ("name: a\nservices: []\n", 2, "services", "at least one service"),
    ("name: a\nservices: {}\n", 2, "services", "must be a list"),
    (edit(f'"{MEASUREMENT}"', '"abc"'), 7, "services[0].measurement", "is not a measurement"),
    (edit('    measurement: "', '    measure: "'), 7, "services[0].measure", "unknown field"),
    (edit('["/app/server", "--port", "8443"]', "[]"), 8, "services[0].command", "not be empty"),
    (edit('"--port"', "8443"), 8, "services[0].command[1]", "must be a string"),
    (edit("LOG_LEVEL: info", "9LOG: info"), 10, "services[0].environment key", "environment"),
    (edit("LOG_LEVEL: info", "LOG_LEVEL: 3"), 10, "services[0].environment.LOG_LEVEL", "string"),
    (
        edit("DB_PASSWORD: db-password", "DB_PASSWORD: nope"),
        12,
        "services[0].secrets.DB_PASSWORD",
        "names secret 'nope'",
    ),
    (
        edit(
            "services:\n",
            "services:\n"
            + SERVICE
            + f'    measurement: "{MEASUREMENT}"\n'
            + '    command: ["x"]\n',
        ),
        9,
        "services[1].name",
        "appears twice",
    ),
    (GOOD + "version: 1.5\n", 13, "version", "must be a string"),
    (GOOD + "services: x\n", 13, "services", "appears twice"),
    (edit("name: good", "name: &n good") + "version: *n\n", 13, "", "alias *n"),
    ("name: deep\nservices:\n" + "- " * 2000 + "x\n", 3, "", "nested deeper"),
    ("- a\n- b\n", 1, "", "must be a mapping"),
    ("name: a\n  b: c\n", 2, "", "not YAML"),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), INVALID)
def test_each_validation_error_names_line_and_field(
    text: str, line: int, field: str, words: str
) -> None:
    with pytest.raises(document.PolicyError) as caught:
        document.parse(text)
    error = caught.value
    assert (error.line, error.path) == (line, field), str(error)
    assert words in str(error)
    assert str(error).startswith(f"line {line}: {field}: " if field else f"line {line}: ")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\ud800: x"])
def test_empty_or_unencodable_policies(text: str) -> None:
    with pytest.raises(document.PolicyError):
        document.parse(text)


def test_tags_count_as_their_type() -> None:
    assert document.parse(GOOD + "version: !!str 1.5\n").version == "1.5"
    for value in ("1.5", "true", "null", "~", "2024-01-01", "0x1f"):
        with pytest.raises(document.PolicyError, match="version: must be a string"):
            document.parse(GOOD + f"version: {value}\n")


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("make", [signing.generate, p256], ids=["ed25519", "p256"])
def test_signature_round_trip_and_refusals(make) -> None:
    key, other = make(), make()
    message = GOOD.encode()
    sig = signing.sign(message, key)
    signing.verify(message, sig)
    who = signing.fingerprint(sig.signer)
    with pytest.raises(signing.SignatureError, match=f"signature by {who} does not verify"):
        signing.verify(message.replace(b"s3cret", b"s3cres"), sig)
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify(
            message, signing.Signature(sig.signer, signing.sign(message, other).signature)
        )
    with pytest.raises(signing.SignatureError, match="not valid base64"):
        signing.verify(message, signing.Signature(sig.signer, "***"))
    truncated = base64.b64encode(base64.b64decode(sig.signature)[:-3]).decode()
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify(message, signing.Signature(sig.signer, truncated))


def test_signers_are_spki_base64_and_fingerprints_never_fail() -> None:
    key = signing.generate()
    signer = signing.signer_id(key.public_key())
    der = base64.b64decode(signer)
    assert serialization.load_der_public_key(der) == key.public_key()
    assert signing.fingerprint(signer) == "sha256:" + hashlib.sha256(der).hexdigest()[:16]
    for junk in ("", "%%%", "\ud800", "é" * 10):
        assert signing.fingerprint(junk).startswith("sha256:")
    with pytest.raises(signing.SignatureError, match="not a base64 DER public key"):
        signing.public_key(base64.b64encode(b"nope").decode())


def test_other_algorithms_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(signing.SignatureError, match="unsupported key algorithm"):
        signing.sign(b"m", p384)
    x = x25519.X25519PrivateKey.generate().public_key()
    for public in (p384.public_key(), x):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(signing.SignatureError, match="unsupported key algorithm"):
            signing.public_key(base64.b64encode(der).decode())


def test_key_files(tmp_path: Path) -> None:
    key = signing.generate()
    public = signing.write_key_pair(key, tmp_path / "k")
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = signing.load_private_key(tmp_path / "k")
    assert signing.signer_id(loaded.public_key()) == signing.signer_id(key.public_key())
    with pytest.raises(FileExistsError):
        signing.write_key_pair(key, tmp_path / "k")
    (tmp_path / "p384").write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(signing.SignatureError, match="unsupported"):
        signing.load_private_key(tmp_path / "p384")
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(signing.SignatureError, match="not an unencrypted PEM"):
        signing.load_private_key(tmp_path / "junk")


def test_request_messages_bind_method_path_and_time() -> None:
    assert signing.request_message("delete", "/v1/policies/a", 7) == (
        b"enclave-cas request v1\nDELETE /v1/policies/a\n7"
    )


CAS_KEY = x25519.X25519PrivateKey.generate()


@pytest.mark.parametrize("make", [signing.generate, p256], ids=["ed25519", "p256"])
def test_envelope_round_trip(make) -> None:
    sig = signing.sign(GOOD.encode(), make())
    sealed = envelope.seal(GOOD, [sig], CAS_KEY.public_key())
    assert envelope.open_envelope(sealed, CAS_KEY) == (GOOD, [sig])
    assert envelope.open_envelope(envelope.seal(GOOD, [], CAS_KEY.public_key()), CAS_KEY) == (
        GOOD,
        [],
    )
    text = envelope.public_key_text(CAS_KEY.public_key())
    assert envelope.load_public_key(text) == CAS_KEY.public_key()


def raw_envelope(plaintext: bytes) -> str:
    """An envelope around arbitrary bytes, as a careless or hostile sealer would make it."""
    data = envelope.SUITE.encrypt(plaintext, CAS_KEY.public_key(), envelope.INFO)
    return base64.b64encode(data).decode()


def test_envelope_refusals_never_show_the_plaintext() -> None:
    sealed = envelope.seal(GOOD, [], CAS_KEY.public_key())
    data = base64.b64decode(sealed)
    flipped = data[:50] + bytes([data[50] ^ 1]) + data[51:]
    cases = {
        "not valid base64": "%%%",
        "truncated": base64.b64encode(data[:47]).decode(),
        "does not decrypt": base64.b64encode(data[:-1]).decode(),
        "does not decrypt with": base64.b64encode(flipped).decode(),
        "not UTF-8 JSON": raw_envelope(b"\xff not json"),
        "no string 'policy'": raw_envelope(b'{"policy": 1}'),
        "'signatures' is not a list": raw_envelope(b'{"policy": "p", "signatures": {}}'),
        "signatures[0] needs": raw_envelope(b'{"policy": "p", "signatures": [{"signer": 1}]}'),
        "not valid Unicode": raw_envelope(b'{"policy": "\\ud800"}'),
        "not UTF-8 JSON ": raw_envelope(b"[" * 100_000),
    }
    for words, text in cases.items():
        with pytest.raises(envelope.EnvelopeError, match=re.escape(words.strip())) as caught:
            envelope.open_envelope(text, CAS_KEY)
        assert "s3cret" not in str(caught.value)
    other = x25519.X25519PrivateKey.generate()
    with pytest.raises(envelope.EnvelopeError, match="does not decrypt with this CAS's key"):
        envelope.open_envelope(sealed, other)
    for bad in ("", "abc", base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(envelope.EnvelopeError, match="encryptionKey: not base64"):
            envelope.load_public_key(bad)


def test_the_envelope_is_hpke_base_mode_with_the_documented_suite() -> None:
    """Anyone with RFC 9180 X25519/HKDF-SHA256/AES-256-GCM and the info string can open it."""
    sealed = base64.b64decode(envelope.seal(GOOD, [], CAS_KEY.public_key()))
    inner = json.loads(
        envelope.SUITE.decrypt(sealed, CAS_KEY, b"enclave-operator encrypted policy v1")
    )
    assert inner == {"policy": GOOD, "signatures": []}
