"""A client of the CAS API, for the CLI and the operator: HTTPS only, certificates verified.

Two failure kinds, because callers treat them differently: ``Unreachable`` (no answer, TLS
failure, a 5xx) is worth retrying; ``Refused`` (a 4xx with the CAS's reason) is final for the
same request.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from enclave_operator.policies import signing

DEFAULT_PORT = 8081


class AddressError(ValueError):
    """A CAS address that cannot be used."""


class Unreachable(Exception):
    """The CAS did not answer usefully; try again later."""


class Refused(Exception):
    """The CAS refused the request; the message is the CAS's own reason."""

    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def base_url(address: str) -> str:
    """``https://host[:port]``, ``host[:port]`` or ``[v6]:port`` → ``https://host:port``."""
    text = address.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise AddressError(f"{address!r}: the CAS is reached over https only")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise AddressError(f"{address!r}: expected host[:port] or https://host[:port]")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as e:
        raise AddressError(f"{address!r}: {e}") from e
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"https://{host}:{port}"


def tls_context(ca: Path | bytes | None = None) -> ssl.SSLContext:
    """Verifying context: the given CA (file or PEM bytes), else the system's. A client
    certificate held in memory is added with ``pki.load_chain``."""
    if isinstance(ca, bytes):
        return ssl.create_default_context(cadata=ca.decode())
    return ssl.create_default_context(cafile=str(ca) if ca else None)


async def call_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    who: str = "",
) -> dict[str, Any]:
    """One JSON request to a service of ours (CAS, LAS): a JSON object on success, else
    ``Unreachable`` (no answer, TLS, timeout, 5xx, 408, 429) or ``Refused`` (a 4xx with the
    service's ``{"error": {code, message, field}}``). ``who`` starts every message."""
    who = who or url
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
        raise Unreachable(f"{who} unreachable: {e or type(e).__name__}") from e
    if status < 300 and isinstance(data, dict):
        return data
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or f"HTTP {status}")
    if status >= 500 or status in (408, 429) or status < 400:
        raise Unreachable(f"{who}: {message}")
    raise Refused(status, str(err.get("code", "")), message, str(err.get("field", "")))


class CASClient:
    def __init__(self, address: str, context: ssl.SSLContext, timeout: float = 10.0) -> None:
        self.url = base_url(address)
        self._context = context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CASClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._context)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return await call_json(self._session, method, self.url + path, body, headers, self.url)

    async def version(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/version")

    async def encryption_key(self) -> str:
        return str((await self._call("GET", "/v1/encryption-key"))["key"])

    async def register_signed(
        self, policy: str, signatures: Sequence[Mapping[str, str]]
    ) -> dict[str, Any]:
        body = {"policy": policy, "signatures": list(signatures)}
        return await self._call("POST", "/v1/policies/signed", body)

    async def register_encrypted(self, policy: str, encryption_key: str) -> dict[str, Any]:
        body = {"policy": policy, "encryptionKey": encryption_key}
        return await self._call("POST", "/v1/policies/encrypted", body)

    async def get(self, name: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/policies/{quote(name, safe='')}")

    async def delete(self, name: str, owner: signing.PrivateKey | None = None) -> dict[str, Any]:
        """As the owner whose key is given (a signed request), else as whoever the TLS client
        certificate says (the operator)."""
        path = f"/v1/policies/{quote(name, safe='')}"
        headers: dict[str, str] = {}
        if owner is not None:
            stamp = int(time.time())
            sig = signing.sign(signing.request_message("DELETE", path, stamp), owner)
            headers = {
                "X-Enclave-Signer": sig.signer,
                "X-Enclave-Signature": sig.signature,
                "X-Enclave-Timestamp": str(stamp),
            }
        return await self._call("DELETE", path, headers=headers)
