"""Private keys held in memory (the webhook's serving key, the operator's CAS client key) are
loaded into TLS contexts without leaving a file behind: each process used to keep a directory
of them under /tmp for good."""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path

import pytest

from enclave_operator.pki import Authority, load_chain
from enclave_operator.policies.controller.trust import Trust
from enclave_operator.webhook.server import Admission, Server
from enclave_operator.webhook.settings import Settings


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tempfile puts its files for the duration of the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _issued() -> tuple[bytes, bytes, bytes]:
    ca = Authority("test-ca", dt.timedelta(days=1))
    leaf = ca.issue("leaf", hosts=["localhost"])
    return ca.cert, leaf.cert, leaf.key


def test_load_chain_loads_and_leaves_nothing(scratch: Path) -> None:
    _, cert, key = _issued()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_chain(context, cert, key)
    assert list(scratch.iterdir()) == []


def test_load_chain_refuses_a_key_that_does_not_match(scratch: Path) -> None:
    _, cert, _ = _issued()
    _, _, other_key = _issued()
    with pytest.raises(ssl.SSLError):
        load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, other_key)
    assert list(scratch.iterdir()) == []


def test_cas_client_key_leaves_no_file(scratch: Path) -> None:
    ca, cert, key = _issued()
    trust = Trust(kube=None, operator_namespace="enclave-system")  # type: ignore[arg-type]
    context = trust._context(ca, cert, key)
    assert trust._context(ca, cert, key) is context  # cached by content
    assert list(scratch.iterdir()) == []


def test_webhook_serving_key_leaves_no_file(scratch: Path) -> None:
    _, cert, key = _issued()
    server = Server(Admission(Settings(), None, lambda _: None), "127.0.0.1", 0)
    server.load(cert, key)
    server.load(cert, key)  # a rotation loads again
    assert list(scratch.iterdir()) == []
