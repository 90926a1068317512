"""What the CAS tests share: policies, signed bodies, certificates with extra client identities,
and a plain keep-alive HTTPS client that can send anything (raw bytes, odd headers)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import socket
import sqlite3
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.pki import OPERATOR_CN, Authority
from enclave_operator.policies import signing
from enclave_operator.services.cas.store import FILE
from tests.support.cas_process import CASProcess, Certificates

MEASUREMENT = "ab" * 32


def policy_text(name: str, secret: str = "hunter2") -> str:
    return f"""name: {name}
secrets:
  - name: db-password
    value: "{secret}"
services:
  - name: api
    measurement: "{MEASUREMENT}"
    command: ["/app/server", "--port", "8443"]
    environment:
      LOG_LEVEL: info
    secrets:
      DB_PASSWORD: db-password
"""


def signed_body(text: str, *keys: signing.PrivateKey) -> dict[str, Any]:
    sigs = [signing.sign(text.encode(), k).as_dict() for k in keys]
    return {"policy": text, "signatures": sigs}


def delete_headers(path: str, key: signing.PrivateKey, stamp: int | None = None) -> dict[str, str]:
    """An owner's signed DELETE request, as `enclavectl policy delete` sends it."""
    stamp = int(time.time()) if stamp is None else stamp
    sig = signing.sign(signing.request_message("DELETE", path, stamp), key)
    return {
        "X-Enclave-Signer": sig.signer,
        "X-Enclave-Signature": sig.signature,
        "X-Enclave-Timestamp": str(stamp),
    }


@dataclass
class Identities:
    """The CAS certificates plus client certificates the operator's CA also signed."""

    certs: Certificates
    stranger: tuple[Path, Path]
    """clientAuth certificate with another CommonName, from the same CA."""
    foreign_operator: tuple[Path, Path]
    """CommonName enclave-operator, clientAuth, but from another CA."""

    @classmethod
    def make(cls, directory: Path) -> Identities:
        authority = Authority("test-cas-ca", dt.timedelta(days=2))
        serving = authority.issue("localhost", hosts=["localhost", "127.0.0.1"])
        tls = directory / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        (tls / "tls.crt").write_bytes(serving.cert)
        (tls / "tls.key").write_bytes(serving.key)
        (tls / "ca.crt").write_bytes(authority.cert)
        other = Authority("someone-elses-ca", dt.timedelta(days=2))
        pairs = {
            "client": authority.issue(OPERATOR_CN, client=True),
            "stranger": authority.issue("not-the-operator", client=True),
            "foreign": other.issue(OPERATOR_CN, client=True),
        }
        for name, issued in pairs.items():
            (directory / f"{name}.crt").write_bytes(issued.cert)
            (directory / f"{name}.key").write_bytes(issued.key)
        return cls(
            Certificates(directory),
            (directory / "stranger.crt", directory / "stranger.key"),
            (directory / "foreign.crt", directory / "foreign.key"),
        )


class Http:
    """One keep-alive HTTPS connection; reconnects when the server closed it (as aiohttp
    does after some refusals). Answers are (status, parsed JSON or None)."""

    def __init__(
        self, port: int, ca: Path, client: tuple[Path, Path] | None = None, timeout: float = 30
    ) -> None:
        self.port, self.timeout = port, timeout
        self.context = ssl.create_default_context(cafile=str(ca))
        if client:
            self.context.load_cert_chain(*client)
        self.conn: http.client.HTTPSConnection | None = None
        self.sent = 0

    def _connection(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=self.timeout
            )
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def raw(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a connection the server closed after its last answer
                if attempt == 2:
                    raise
                continue
            self.sent += 1
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] = {},
    ) -> tuple[int, Any]:
        """JSON bodies from Python values; bytes are sent as they are."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        status, raw = self.raw(method, path, data, headers)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None


def error_of(answer: Any) -> dict[str, Any]:
    assert isinstance(answer, dict), answer
    assert isinstance(answer.get("error"), dict), answer
    error: dict[str, Any] = answer["error"]
    return error


@contextlib.contextmanager
def running_cas(directory: Path, identities: Identities | None = None) -> Iterator[CASProcess]:
    identities = identities or Identities.make(directory / "certs")
    cas = CASProcess(directory / "db", identities.certs, directory / "cas.log")
    cas.start()
    try:
        yield cas
    finally:
        cas.stop()


def stored(db_dir: Path) -> dict[str, str]:
    """name → digest, read straight from the CAS's SQLite file (WAL allows a reader)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_dir / FILE}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT name, digest FROM policies ORDER BY name").fetchall())


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
