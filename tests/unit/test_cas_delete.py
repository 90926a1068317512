"""Deleting a policy from the CAS (a real process on loopback, real TLS): an owner's signed
request or the operator's client certificate; anyone else, or a stale or odd request, is 403."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from enclave_operator.policies import signing
from enclave_operator.policies.client import CASClient, Refused, tls_context
from tests.support.cas_process import CASProcess
from tests.unit.cas_helpers import (
    Http,
    Identities,
    delete_headers,
    error_of,
    policy_text,
    running_cas,
    signed_body,
)


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


def refused(answer: tuple[int, Any], status: int, *words: str) -> None:
    code, body = answer
    err = error_of(body)
    assert code == status, body
    for word in words:
        assert word in err["message"], err


SIGNED = "/v1/policies/signed"


def register(http: Http, name: str, *keys: signing.PrivateKey) -> None:
    status, _ = http.call("POST", SIGNED, signed_body(policy_text(name), *keys))
    assert status == 201


def present(http: Http, name: str) -> bool:
    status, _ = http.call("GET", f"/v1/policies/{name}")
    assert status in (200, 404)
    return status == 200


def test_deletion_by_owners_only(http: Http) -> None:
    owner, second, stranger = signing.generate(), signing.generate(), signing.generate()
    register(http, "owned", owner, second)
    path = "/v1/policies/owned"
    assert http.call("DELETE", path)[0] == 403
    who = signing.fingerprint(signing.signer_id(stranger.public_key()))
    refused(http.call("DELETE", path, headers=delete_headers(path, stranger)), 403, who)
    stale = delete_headers(path, owner, int(time.time()) - 3600)
    refused(http.call("DELETE", path, headers=stale), 403, "Timestamp")
    elsewhere = delete_headers("/v1/policies/other", owner)
    refused(http.call("DELETE", path, headers=elsewhere), 403, "does not verify")
    assert present(http, "owned")
    assert http.call("DELETE", path, headers=delete_headers(path, second)) == (
        200,
        {"name": "owned", "deleted": True},
    )
    assert not present(http, "owned")
    refused(http.call("DELETE", path, headers=delete_headers(path, owner)), 404)


@pytest.mark.parametrize(
    ("index", "stamp"),
    list(enumerate(["\u00b2", "\uff11\uff12\uff13", "9" * 5000, "-1", "1e9", ""])),
)
def test_odd_timestamps_are_403(http: Http, index: int, stamp: str) -> None:
    owner = signing.generate()
    register(http, f"stamped-{index}", owner)
    path = f"/v1/policies/stamped-{index}"
    headers: dict[str, Any] = delete_headers(path, owner)
    headers["X-Enclave-Timestamp"] = stamp.encode()  # UTF-8 bytes on the wire
    refused(http.call("DELETE", path, headers=headers), 403, "Timestamp")
    assert http.call("DELETE", path, headers=delete_headers(path, owner))[0] == 200


def test_the_operators_client_certificate_may_delete(cas: CASProcess, identities: Identities):
    owner = signing.generate()
    anonymous = Http(cas.client_port, cas.ca_file())
    operator = Http(cas.client_port, cas.ca_file(), identities.certs.client)
    stranger = Http(cas.client_port, cas.ca_file(), identities.stranger)
    try:
        register(anonymous, "by-operator", owner)
        refused(stranger.call("DELETE", "/v1/policies/by-operator"), 403)
        assert anonymous.call("DELETE", "/v1/policies/by-operator")[0] == 403
        assert present(anonymous, "by-operator")
        assert operator.call("DELETE", "/v1/policies/by-operator")[0] == 200
        assert not present(anonymous, "by-operator")
    finally:
        for client in (anonymous, operator, stranger):
            client.close()


def test_a_client_certificate_from_another_ca_is_not_accepted(
    cas: CASProcess, identities: Identities, http: Http
) -> None:
    register(http, "foreign", signing.generate())
    foreign = Http(cas.client_port, cas.ca_file(), identities.foreign_operator)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            foreign.call("DELETE", "/v1/policies/foreign")
    finally:
        foreign.close()
    assert present(http, "foreign")


def test_the_cli_client_deletes_as_an_owner(cas: CASProcess, http: Http) -> None:
    owner = signing.generate()
    register(http, "via-client", owner)

    async def scenario() -> None:
        async with CASClient(cas.address, tls_context(cas.ca_file())) as client:
            with pytest.raises(Refused) as refusal:
                await client.delete("via-client", signing.generate())
            assert refusal.value.status == 403
            assert (await client.delete("via-client", owner))["deleted"] is True

    asyncio.run(scenario())
    assert not present(http, "via-client")
