"""The runtime's two requests: a quote from the node's LAS (plain HTTP) and an attestation at
CAS's enclave port (HTTPS, verified). ``Unreachable``: no usable answer; ``Refused``: the
service's own reason (a 4xx)."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp


class Unreachable(Exception):
    """No usable answer: connection, TLS or timeout failure, or a 5xx."""


class Refused(Exception):
    """A 4xx; the message is the service's reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def session(context: ssl.SSLContext, timeout: float) -> aiohttp.ClientSession:
    """One session for both: ``context`` applies to https URLs (CAS) only."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


async def post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], who: str
) -> dict[str, Any]:
    try:
        async with http.post(url, json=body) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
        raise Unreachable(f"{who} at {url} unreachable: {e or type(e).__name__}") from e
    if status < 300 and isinstance(data, dict):
        return data
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or f"HTTP {status}")
    if status >= 500 or status in (408, 429) or status < 400:
        raise Unreachable(f"{who} at {url}: {message}")
    raise Refused(status, str(err.get("code", "")), message)


async def quote(
    http: aiohttp.ClientSession, las_url: str, measurement: str, report_data: str
) -> dict[str, Any]:
    body = {"measurement": measurement, "reportData": report_data}
    answer = await post(http, f"{las_url}/v1/quote", body, "LAS")
    q = answer.get("quote")
    if not isinstance(q, dict):
        raise Unreachable(f"LAS at {las_url}: answer without a quote")
    return q


async def attest(
    http: aiohttp.ClientSession, cas_url: str, config_id: str, q: dict[str, Any]
) -> str:
    """The sealed release (base64) CAS answers with."""
    answer = await post(http, f"{cas_url}/v1/attest", {"configId": config_id, "quote": q}, "CAS")
    sealed = answer.get("sealed")
    if not isinstance(sealed, str):
        raise Unreachable(f"CAS at {cas_url}: answer without a sealed release")
    return sealed
