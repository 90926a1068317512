"""Hundreds of malformed requests against every CAS endpoint: none may be answered ≥ 500, the
process stays up, and the store is exactly what it was (no refusal writes anything)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave_operator.policies import envelope, signing
from tests.support.cas_process import CASProcess
from tests.unit.cas_helpers import (
    Http,
    delete_headers,
    policy_text,
    running_cas,
    signed_body,
    stored,
)

MIN_REQUESTS = 500
OWNER = signing.generate()
STRANGER = signing.generate()
KNOWN = policy_text("known")
KNOWN_BODY = signed_body(KNOWN, OWNER)
ENDPOINTS = [
    "/v1/health",
    "/v1/version",
    "/v1/encryption-key",
    "/v1/policies/signed",
    "/v1/policies/encrypted",
    "/v1/policies/known",
    "/v1/policies/absent",
]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]
FIELDS = ["policy", "signatures", "encryptionKey", "signer", "signature", "name"]
UNSENDABLE = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
# Every field the CAS reads, with a value of any JSON type.
wrong_types = st.dictionaries(
    st.sampled_from(FIELDS), json_values, max_size=4
) | st.fixed_dictionaries(
    {
        "policy": json_values,
        "signatures": st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values), max_size=3),
    }
)
# Strings that look like numbers to str.isdigit(), and ones that are far too long.
stamps = st.sampled_from(
    ["", "0", "-5", "1e9", "²³", "\u0661\u0662\u0663", "9" * 5000, str(int(time.time())), " 1"]
) | st.text(alphabet="0123456789\u00b2\u00b3\u00b9\u0660\u0661", max_size=20)
header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-_ABCXYZ0123456789", min_size=1, max_size=20
).filter(lambda n: n.lower() not in UNSENDABLE)
header_values = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CASProcess]:
    with running_cas(tmp_path_factory.mktemp("cas-fuzz")) as process:
        yield process


FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_malformed_requests_never_break_the_cas(cas: CASProcess) -> None:
    http = Http(cas.client_port, cas.ca_file())
    enclave = Http(cas.enclave_port, cas.ca_file())
    assert http.call("POST", "/v1/policies/signed", KNOWN_BODY)[0] == 201
    assert (
        http.call("POST", "/v1/policies/signed", signed_body(policy_text("other"), OWNER))[0] == 201
    )
    before = (
        http.call("GET", "/v1/version")[1]["policies"],
        stored(cas.db_dir),
        known_digest(http),
    )
    cas_key = http.call("GET", "/v1/encryption-key")[1]["key"]
    sealed_known = envelope.seal(KNOWN, [], envelope.load_public_key(cas_key))
    statuses: Counter[int] = Counter()

    def send(
        client: Http, method: str, path: str, body: bytes | None, headers: dict[str, Any]
    ) -> None:
        status, raw = client.raw(method, path, body, headers)
        statuses[status] += 1
        assert status < 500, (method, path, (body or b"")[:300], headers, raw[:300])

    @settings(FUZZ, max_examples=120)
    @given(st.sampled_from(METHODS), st.sampled_from(ENDPOINTS), st.binary(max_size=3000))
    def random_bytes(method: str, path: str, body: bytes) -> None:
        send(http, method, path, body, {"Content-Type": "application/json"})

    @settings(FUZZ, max_examples=150)
    @given(st.sampled_from(ENDPOINTS[3:5]), json_values | wrong_types)
    def json_shapes(path: str, value: Any) -> None:
        send(http, "POST", path, json.dumps(value).encode(), {})

    @settings(FUZZ, max_examples=120)
    @given(st.sampled_from([*FIELDS[:5]]), json_values, st.booleans())
    def near_misses(field: str, value: Any, encrypted: bool) -> None:
        """The known policy, signed or sealed, with one field replaced: refused or idempotent
        (same name, same text), never stored anew."""
        if encrypted:
            body: dict[str, Any] = {"policy": sealed_known, "encryptionKey": cas_key}
        else:
            body = json.loads(json.dumps(KNOWN_BODY))
        target = (
            body["signatures"][0] if field in ("signer", "signature") and not encrypted else body
        )
        target[field] = value
        path = "/v1/policies/encrypted" if encrypted else "/v1/policies/signed"
        send(http, "POST", path, json.dumps(body).encode(), {})

    @settings(FUZZ, max_examples=20)
    @given(
        st.sampled_from(FIELDS),
        st.integers(60_000, 400_000),
        st.sampled_from(["A", "é", "[", "\\u"]),
    )
    def huge_strings(field: str, size: int, char: str) -> None:
        body = {**KNOWN_BODY, field: char * (size // len(char))}
        for path in ENDPOINTS[3:5]:
            send(http, "POST", path, json.dumps(body).encode(), {})

    @settings(FUZZ, max_examples=100)
    @given(
        st.sampled_from(["GET", "DELETE", "POST"]),
        st.binary(min_size=0, max_size=300),
        st.booleans(),
    )
    def weird_paths(method: str, name: bytes, under_policies: bool) -> None:
        quoted = quote_from_bytes(name, safe="/%?#;=&")
        path = f"/v1/policies/{quoted}" if under_policies else "/" + quoted
        send(http, method, path, None, {})

    @settings(FUZZ, max_examples=100)
    @given(
        st.sampled_from(["known", "other", "absent", "", "known/..", "..%2Fknown"]),
        st.sampled_from([OWNER, STRANGER]),
        st.dictionaries(
            st.sampled_from(["X-Enclave-Signer", "X-Enclave-Signature"]), header_values
        ),
        stamps,
        st.dictionaries(header_names, header_values, max_size=4),
    )
    def delete_headers_fuzz(
        name: str, key: Any, replaced: dict[str, bytes], stamp: str, extra: dict[str, bytes]
    ) -> None:
        path = f"/v1/policies/{name}"
        headers: dict[str, Any] = {**extra, **delete_headers(path, key)}
        headers.update(replaced)
        headers["X-Enclave-Timestamp"] = stamp.encode()
        if key is OWNER and not replaced:
            headers["X-Enclave-Signature"] = "AAAA"  # an owner's own signature would delete
        send(http, "DELETE", path, None, headers)

    @settings(FUZZ, max_examples=80)
    @given(st.sampled_from(["known", "other"]), stamps, st.booleans())
    def owner_timestamps(name: str, stamp: str, spoil_path: bool) -> None:
        """An owner's signed request up to the timestamp: the checks before the signature."""
        path = f"/v1/policies/{name}"
        headers: dict[str, Any] = delete_headers(path + ("x" if spoil_path else ""), OWNER)
        headers["X-Enclave-Timestamp"] = stamp.encode()
        if not spoil_path:
            headers["X-Enclave-Signature"] = "AAAA"
        send(http, "DELETE", path, None, headers)

    @settings(FUZZ, max_examples=40)
    @given(
        st.sampled_from(METHODS[:5]),
        st.sampled_from([*ENDPOINTS[:2], "/", "/v1/policies/known"]),
        st.binary(max_size=200),
        st.dictionaries(header_names, header_values, max_size=3),
    )
    def enclave_port(method: str, path: str, body: bytes, headers: dict[str, bytes]) -> None:
        send(enclave, method, path, body, headers)

    fuzzers: list[Callable[[], None]] = [
        random_bytes,
        json_shapes,
        near_misses,
        huge_strings,
        weird_paths,
        delete_headers_fuzz,
        owner_timestamps,
        enclave_port,
    ]
    try:
        for fuzz in fuzzers:
            fuzz()
        assert cas.alive()
        after = (
            http.call("GET", "/v1/version")[1]["policies"],
            stored(cas.db_dir),
            known_digest(http),
        )
    finally:
        http.close()
        enclave.close()
    total = sum(statuses.values())
    assert total >= MIN_REQUESTS, statuses
    assert max(statuses) < 500, statuses
    assert after == before


def known_digest(http: Http) -> str:
    return str(http.call("GET", "/v1/policies/known")[1]["digest"])
