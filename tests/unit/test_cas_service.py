"""The CAS as a real process on loopback, over real TLS: every refusal with its status, code
and field; idempotent registration; who may delete; metadata that never carries the policy."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519

from enclave_operator.policies import envelope, signing
from tests.support.cas_process import CASProcess
from tests.unit.cas_helpers import (
    Http,
    Identities,
    error_of,
    policy_text,
    running_cas,
    signed_body,
)

SIGNED, ENCRYPTED = "/v1/policies/signed", "/v1/policies/encrypted"
KEY = signing.generate()


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    return Identities.make(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory, identities: Identities) -> Iterator[CASProcess]:
    with running_cas(tmp_path_factory.mktemp("cas"), identities) as process:
        yield process


@pytest.fixture
def http(cas: CASProcess) -> Iterator[Http]:
    client = Http(cas.client_port, cas.ca_file())
    yield client
    client.close()


def refused(answer: tuple[int, Any], status: int, field: str, *words: str) -> dict[str, Any]:
    """The answer is a refusal with this status naming this field (and these words)."""
    code, body = answer
    err = error_of(body)
    assert (code, err.get("field", "")) == (status, field), body
    for word in words:
        assert word in err["message"], err
    return err


def cas_key(http: Http) -> str:
    status, body = http.call("GET", "/v1/encryption-key")
    assert status == 200
    return str(body["key"])


def sealed(http: Http, text: str, *keys: signing.PrivateKey) -> dict[str, Any]:
    key = cas_key(http)
    sigs = [signing.sign(text.encode(), k) for k in keys]
    return {
        "policy": envelope.seal(text, sigs, envelope.load_public_key(key)),
        "encryptionKey": key,
    }


def test_health_and_version(http: Http) -> None:
    assert http.call("GET", "/v1/health") == (200, {"status": "ok"})
    status, body = http.call("GET", "/v1/version")
    assert status == 200
    assert body["service"] == "cas"
    assert len(body["instanceId"]) == 32


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"policy": ', ["not JSON"]),
        (b"[1, 2]", ["JSON object"]),
        (b'{"policy": "\xff\xfe"}', ["not UTF-8", "byte 12"]),
        (b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
        (b"", ["not JSON"]),
    ],
    ids=["truncated", "not-object", "not-utf8", "deep", "empty"],
)
@pytest.mark.parametrize("path", [SIGNED, ENCRYPTED])
def test_bodies_that_are_not_json_objects(http: Http, path: str, raw: bytes, words: list[str]):
    refused(http.call("POST", path, raw), 400, "body", *words)


def test_a_body_over_one_mebibyte_is_413(http: Http) -> None:
    body = json.dumps({"policy": "x" * (1024 * 1024), "signatures": []}).encode()
    refused(http.call("POST", SIGNED, body), 413, "body", "over 1048576 bytes")


TEXT = policy_text("shape")
GOOD_SIG = signing.sign(TEXT.encode(), KEY).as_dict()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"signatures": [GOOD_SIG]}, "policy"),
        ({"policy": 42, "signatures": [GOOD_SIG]}, "policy"),
        ({"policy": "", "signatures": [GOOD_SIG]}, "policy"),
        ({"policy": "x" * (512 * 1024 + 1), "signatures": [GOOD_SIG]}, "policy"),
        ({"policy": "name: \ud800", "signatures": [GOOD_SIG]}, "policy"),
        ({"policy": TEXT}, "signatures"),
        ({"policy": TEXT, "signatures": "sig"}, "signatures"),
        ({"policy": TEXT, "signatures": []}, "signatures"),
        ({"policy": TEXT, "signatures": [GOOD_SIG] * 65}, "signatures"),
        ({"policy": TEXT, "signatures": [42]}, "signatures[0]"),
        ({"policy": TEXT, "signatures": [GOOD_SIG, {"signature": "x"}]}, "signatures[1].signer"),
        (
            {"policy": TEXT, "signatures": [{"signer": ["k"], "signature": "x"}]},
            "signatures[0].signer",
        ),
        (
            {"policy": TEXT, "signatures": [{"signer": "k", "signature": None}]},
            "signatures[0].signature",
        ),
    ],
)
def test_wrong_types_name_the_field(http: Http, body: dict[str, Any], field: str) -> None:
    refused(http.call("POST", SIGNED, body), 400, field)


def test_bad_base64_in_signature_and_signer(http: Http) -> None:
    who = signing.fingerprint(GOOD_SIG["signer"])
    bad = {**GOOD_SIG, "signature": "not base64!"}
    refused(
        http.call("POST", SIGNED, {"policy": TEXT, "signatures": [bad]}),
        422,
        "signatures[0]",
        who,
        "not valid base64",
    )
    bad = {**GOOD_SIG, "signer": "%%%"}
    refused(
        http.call("POST", SIGNED, {"policy": TEXT, "signatures": [GOOD_SIG, bad]}),
        422,
        "signatures[1]",
        "not a base64 DER public key",
    )


def spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("algorithm", ["rsa", "p384"])
def test_unsupported_signer_algorithms(http: Http, algorithm: str) -> None:
    if algorithm == "rsa":
        rkey = rsa.generate_private_key(65537, 2048)
        raw = rkey.sign(TEXT.encode(), padding.PKCS1v15(), hashes.SHA256())
        signer = spki(rkey.public_key())
    else:
        ekey = ec.generate_private_key(ec.SECP384R1())
        raw = ekey.sign(TEXT.encode(), ec.ECDSA(hashes.SHA384()))
        signer = spki(ekey.public_key())
    sig = {"signer": signer, "signature": base64.b64encode(raw).decode()}
    refused(
        http.call("POST", SIGNED, {"policy": TEXT, "signatures": [sig]}),
        422,
        "signatures[0]",
        "unsupported key algorithm",
        signing.fingerprint(signer),
    )


def test_a_signature_that_does_not_verify_names_its_signer(http: Http) -> None:
    other = signing.generate()
    body = signed_body(policy_text("tampered"), KEY, other)
    body["policy"] = body["policy"].replace("hunter2", "hunter3")
    who = signing.fingerprint(body["signatures"][0]["signer"])
    err = refused(http.call("POST", SIGNED, body), 422, "signatures[0]", f"signature by {who}")
    assert err["code"] == "SignatureInvalid"
    assert "does not verify" in err["message"]
    body = signed_body(policy_text("wrong-key"), KEY, other)
    body["signatures"][1]["signer"] = body["signatures"][0]["signer"]  # other's signature
    refused(http.call("POST", SIGNED, body), 422, "signatures[1]", "does not verify")


def test_invalid_policies_name_line_and_field(http: Http) -> None:
    text = policy_text("invalid").replace(f'"{"ab" * 32}"', '"not-hex"')
    err = refused(http.call("POST", SIGNED, signed_body(text, KEY)), 422, "policy")
    assert err["code"] == "PolicyInvalid"
    assert "line 7: services[0].measurement" in err["message"], err
    text = "name: deep\nservices: " + "[" * 50_000 + "]" * 50_000 + "\n"
    refused(http.call("POST", SIGNED, signed_body(text, KEY)), 422, "policy", "line 2", "nested")
    text = policy_text("alias").replace("measurement:", "measurement: &m") + "x: *m\n"
    refused(http.call("POST", SIGNED, signed_body(text, KEY)), 422, "policy", "alias")


def test_encrypted_policy_refusals(http: Http) -> None:
    good = sealed(http, policy_text("enc-refusals"))
    ct = base64.b64decode(good["policy"])
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({**good, "policy": "%%%not base64"}, 422, "policy", "not valid base64"),
        ({**good, "policy": base64.b64encode(ct[:40]).decode()}, 422, "policy", "truncated"),
        ({**good, "policy": base64.b64encode(ct[:-1]).decode()}, 422, "policy", "not decrypt"),
        ({**good, "encryptionKey": "abc"}, 400, "encryptionKey", "32-byte X25519"),
        ({**good, "encryptionKey": 7}, 400, "encryptionKey", "non-empty string"),
        ({"encryptionKey": good["encryptionKey"]}, 400, "policy", "non-empty string"),
    ]
    for body, status, field, words in cases:
        refused(http.call("POST", ENCRYPTED, body), status, field, words)


def test_encrypted_for_another_cas(http: Http) -> None:
    elsewhere = x25519.X25519PrivateKey.generate().public_key()
    text = policy_text("elsewhere")
    body = {
        "policy": envelope.seal(text, [], elsewhere),
        "encryptionKey": envelope.public_key_text(elsewhere),
    }
    err = refused(http.call("POST", ENCRYPTED, body), 422, "encryptionKey")
    assert err["code"] == "WrongCAS"
    assert "encrypted for another CAS" in err["message"]


def test_encrypted_registration_and_its_metadata(http: Http) -> None:
    text = policy_text("enc-ok", secret="top-secret-value")
    body = sealed(http, text, KEY)
    status, meta = http.call("POST", ENCRYPTED, body)
    assert status == 201
    assert meta["kind"] == "encrypted"
    assert meta["created"] is True
    assert meta["signers"][0]["fingerprint"] == signing.fingerprint(
        signing.signer_id(KEY.public_key())
    )
    status, raw = http.raw("GET", "/v1/policies/enc-ok")
    assert status == 200
    assert b"top-secret-value" not in raw
    assert b"services" not in raw
    assert set(json.loads(raw)) == {"name", "kind", "digest", "signers", "registered"}
    inner_bad = sealed(http, policy_text("enc-bad-sig"), KEY)
    key = envelope.load_public_key(inner_bad["encryptionKey"])
    forged = signing.Signature(signing.signer_id(KEY.public_key()), GOOD_SIG["signature"])
    inner_bad["policy"] = envelope.seal(policy_text("enc-bad-sig"), [forged], key)
    refused(http.call("POST", ENCRYPTED, inner_bad), 422, "signatures[0]", "does not verify")


def test_same_content_is_idempotent_other_content_conflicts(http: Http) -> None:
    body = signed_body(policy_text("idem"), KEY)
    first, second = http.call("POST", SIGNED, body), http.call("POST", SIGNED, body)
    assert (first[0], second[0]) == (201, 200)
    assert first[1]["created"] is True
    assert second[1]["created"] is False
    assert {**first[1], "created": None} == {**second[1], "created": None}
    other = signed_body(policy_text("idem", secret="changed"), KEY)
    err = refused(http.call("POST", SIGNED, other), 409, "policy", "already registered")
    assert err["code"] == "NameTaken"
    refused(http.call("POST", ENCRYPTED, sealed(http, policy_text("idem"), KEY)), 409, "policy")
    assert http.call("GET", "/v1/policies/idem")[1]["digest"] == first[1]["digest"]


def test_metadata_never_contains_the_policy(http: Http) -> None:
    text = policy_text("meta", secret="do-not-show-me")
    status, meta = http.call("POST", SIGNED, signed_body(text, KEY))
    status, raw = http.raw("GET", "/v1/policies/meta")
    assert status == 200
    assert b"do-not-show-me" not in raw
    assert b"measurement" not in raw
    assert json.loads(raw)["digest"] == meta["digest"]
    refused(http.call("GET", "/v1/policies/no-such-policy"), 404, "")


def test_unknown_paths_and_methods_are_json_4xx(http: Http) -> None:
    refused(http.call("GET", "/v2/health"), 404, "")
    refused(http.call("PUT", "/v1/policies/x", b"{}"), 405, "")
    refused(http.call("GET", SIGNED), 404, "")  # "signed" is not a registered policy
