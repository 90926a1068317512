"""A renewed CAS certificate is served without a restart and without a failed connection: the
files change as the kubelet changes a mounted Secret, new connections get the new certificate,
an open keep-alive connection keeps working."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from enclave_operator.pki import Authority
from tests.support.cas_process import CASProcess, Certificates


def _swap(tls: Path, cert: bytes, key: bytes) -> None:
    """One file after the other, each replaced whole: a reader may see a new certificate with
    the old key for a moment."""
    for name, data in (("tls.crt", cert), ("tls.key", key)):
        tmp = tls / f".{name}.new"
        tmp.write_bytes(data)
        os.replace(tmp, tls / name)


def _serial(conn: http.client.HTTPSConnection) -> int:
    assert conn.sock is not None
    der = conn.sock.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def _get(conn: http.client.HTTPSConnection) -> int:
    conn.request("GET", "/v1/health")
    response = conn.getresponse()
    response.read()
    return response.status


def test_a_renewed_certificate_is_served_without_downtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    authority = Authority("cas-ca", dt.timedelta(days=2))
    tls = tmp_path / "tls"
    tls.mkdir()
    first = authority.issue("localhost", hosts=["localhost", "127.0.0.1"])
    (tls / "ca.crt").write_bytes(authority.cert)
    _swap(tls, first.cert, first.key)
    monkeypatch.setenv("CAS_TLS_RELOAD_SECONDS", "0.2")
    cas = CASProcess(tmp_path / "db", Certificates(tmp_path), tmp_path / "cas.log")
    cas.start()
    try:
        context = ssl.create_default_context(cafile=tls / "ca.crt")
        context.verify_flags |= ssl.VERIFY_X509_STRICT

        def connect() -> http.client.HTTPSConnection:
            return http.client.HTTPSConnection("127.0.0.1", cas.client_port, context=context)

        kept = connect()
        assert _get(kept) == 200
        old = _serial(kept)

        renewed = authority.issue("localhost", hosts=["localhost", "127.0.0.1"])
        _swap(tls, renewed.cert, renewed.key)
        new = x509.load_pem_x509_certificate(renewed.cert).serial_number
        seen, failures = set(), []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and new not in seen:
            conn = connect()
            try:
                assert _get(conn) == 200
                seen.add(_serial(conn))
            except (OSError, ssl.SSLError) as e:
                failures.append(repr(e))
            finally:
                conn.close()
            time.sleep(0.02)
        assert new in seen, f"still serving {seen} after 30 s:\n{cas.log.read_text()}"
        assert failures == [], "connections failed while the certificate changed"
        assert _get(kept) == 200, "the open connection broke"
        assert _serial(kept) == old
        assert "certificate reloaded" in cas.log.read_text()
    finally:
        cas.stop()
